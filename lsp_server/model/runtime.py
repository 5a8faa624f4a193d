"""llama.cpp runtime (through llama-cpp-python): lazy loading, thread-safe generation, sampling."""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any

from .gguf_info import GGUFInfo, NotGGUF, read_gguf_info
from .profiles import Profile
from .types import ModelError, Proposal, Proposals

log = logging.getLogger(__name__)

INSTALL_HINT = "install it with: pip install 'llama-cpp-python>=0.3.16' (or: pip install 'passpilot[model]')"
SAMPLE_TEMPERATURE = 0.8
SAMPLE_TOP_P = 0.95
SAMPLE_TOP_K = 40


def _check_llama_cpp_installed() -> None:
    """Says now (when the engine is assembled) that the package is missing, without importing it: the
    import costs about 0.1 s of start-up (numpy, jinja2) that a job which never asks the model skips."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise ModelError(f"llama-cpp-python is not installed; {INSTALL_HINT}")


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as error:
        raise ModelError(f"llama-cpp-python is not installed ({error}); {INSTALL_HINT}") from None
    except OSError as error:  # the package is there but its shared library does not load
        raise ModelError(f"llama-cpp-python is installed but its library does not load: {error}") from None
    return llama_cpp


def _short_path(path: Path) -> str:
    parts = path.parts
    if len(parts) <= 3:
        return str(path)
    return "…/" + "/".join(parts[-2:])


def describe(path: Path, info: GGUFInfo, profile: Profile) -> str:
    name = info.name or path.stem
    quant = info.file_type
    label = f"{name} {quant}" if quant else name
    if profile.name != "passpilot":
        label += f" [{profile.name}]"
    return f"{label} ({_short_path(path)})"


MIN_PREFIX_TOKENS = 64  # below this, a cut prompt says too little to be worth an answer

# `model.threads` 0 (automatic): llama.cpp's CPU threads meet at a barrier after every operation and spin
# there (OpenMP), so a thread that loses its core to another process stalls all the others. A model this
# small decodes as fast on one thread as on two and does not slow down 2x beside a busy process per core
# (scripts/bench_model_threads.py, docs/benchmarks.md); larger models need the threads, but never all
# cores: PassPilot's own `opt` work, the editor and the user's build run beside them.
ONE_THREAD_MODEL_BYTES = 256 * 2**20
MAX_AUTOMATIC_THREADS = 8


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def automatic_threads(model_bytes: int, cores: int) -> int:
    """llama.cpp threads for a model file of `model_bytes` on `cores` usable cores (`model.threads` 0)."""
    if model_bytes < ONE_THREAD_MODEL_BYTES:
        return 1
    return max(1, min(MAX_AUTOMATIC_THREADS, cores - 1))


class _LlamaVocabulary:
    """`profiles.Vocabulary` over a loaded `llama_cpp.Llama`."""

    def __init__(self, llm: Any, llama_cpp: Any) -> None:
        self._llm = llm
        self._lib = llama_cpp
        self._vocab = llm._model.vocab
        self.bos = llm.token_bos()
        self.eos = llm.token_eos()
        self._special: dict[str, int | None] = {}

    def tokenize(self, text: str, *, add_bos: bool, special: bool = False) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special))

    def special_token(self, text: str) -> int | None:
        if text not in self._special:
            ids = self.tokenize(text, add_bos=False, special=True)
            found = None
            if len(ids) == 1 and self.piece(ids[0], special=True) == text.encode("utf-8"):
                found = ids[0]
            self._special[text] = found
        return self._special[text]

    def is_end(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self._vocab, token))

    def piece(self, token: int, special: bool = False) -> bytes:
        # llama-cpp-python's own detokenize uses a 32-byte buffer; pass names can be longer.
        size = 256
        buffer = ctypes.create_string_buffer(size)
        n = self._lib.llama_token_to_piece(self._vocab, token, buffer, size, 0, special)
        if n < 0:
            size = -n
            buffer = ctypes.create_string_buffer(size)
            n = self._lib.llama_token_to_piece(self._vocab, token, buffer, size, 0, special)
        return buffer.raw[: max(n, 0)]


class LlamaProposer:
    """A `PassProposer` backed by a GGUF model run with llama.cpp. Loads on first use (or `load()`)."""

    def __init__(
        self,
        path: Path,
        profile: Profile,
        *,
        gpu_layers: int = 0,
        threads: int = 0,
        known_passes: Collection[str] | None = None,
        n_ctx: int = 0,
    ) -> None:
        self.path = path
        self.profile = profile
        self.gpu_layers = gpu_layers
        self.known_passes = frozenset(known_passes) if known_passes is not None else None
        _check_llama_cpp_installed()
        self._llama_cpp: Any = None
        try:
            self.info = read_gguf_info(path)
        except NotGGUF as error:
            raise ModelError(f"{path} is not a GGUF model file: {error}") from None
        except OSError as error:
            raise ModelError(f"cannot read model file {path}: {error.strerror or error}") from None
        self.threads = threads or automatic_threads(path.stat().st_size, usable_cores())
        self.n_ctx = n_ctx or profile.default_ctx
        if self.n_ctx and self.info.context_length:
            # Allocating beyond what the model was trained for buys nothing.
            self.n_ctx = min(self.n_ctx, self.info.context_length)
        self.identity = describe(path, self.info, profile)
        self._llm: Any = None
        self._vocabulary: _LlamaVocabulary | None = None
        self._load_error: str | None = None
        self._lock = threading.Lock()

    # -- loading -----------------------------------------------------------------------------------

    @property
    def _lib(self) -> Any:
        """The `llama_cpp` module, imported on first use (ModelError when its library does not load)."""
        if self._llama_cpp is None:
            self._llama_cpp = _import_llama_cpp()
        return self._llama_cpp

    def load(self) -> None:
        """Load the model now (otherwise the first `propose` does). Raises ModelError."""
        with self._lock:
            self._ensure_loaded()

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    @property
    def vocabulary(self) -> _LlamaVocabulary:
        """The loaded model's tokenizer (loads the model). The training pipeline tokenizes through this
        so that its prompts are exactly the runtime's."""
        with self._lock:
            return self._ensure_loaded()

    def prompt_tokens(self, function_ir: str) -> list[int]:
        """The profile's prompt for `function_ir` as token ids (raises when the input is unreadable)."""
        vocab = self.vocabulary
        with self._lock:
            return self.profile.prompt_tokens(function_ir, vocab)

    def decode(self, tokens: list[int]) -> str:
        vocab = self.vocabulary
        return b"".join(vocab.piece(t) for t in tokens).decode("utf-8", errors="replace")

    def _ensure_loaded(self) -> _LlamaVocabulary:
        if self._vocabulary is not None:
            return self._vocabulary
        if self._load_error is not None:  # do not retry a failed (possibly slow) load on every call
            raise ModelError(self._load_error)
        try:
            return self._load()
        except ModelError as error:
            self._load_error = str(error)
            raise

    def _load(self) -> _LlamaVocabulary:
        lib = self._lib
        try:
            llm = lib.Llama(
                model_path=str(self.path),
                n_ctx=self.n_ctx,
                n_threads=self.threads,
                n_threads_batch=self.threads,
                n_gpu_layers=self.gpu_layers,
                seed=0,
                verbose=False,
            )
        except Exception as error:  # llama-cpp-python raises ValueError/RuntimeError with little detail
            arch = self.info.architecture or "unknown"
            raise ModelError(
                f"llama.cpp could not load {self.path} (architecture {arch}): {error}"
            ) from None
        vocabulary = _LlamaVocabulary(llm, lib)
        try:
            self.profile.check(vocabulary)
        except ModelError:
            llm.close()
            raise
        self._llm = llm
        # llama.cpp may round the context up; the model only knows positions it was trained on.
        self.n_ctx = min(llm.n_ctx(), self.info.context_length or llm.n_ctx())
        self._vocabulary = vocabulary
        log.info("loaded %s (context %d, %d threads)", self.identity, self.n_ctx, self.threads)
        return vocabulary

    def close(self) -> None:
        with self._lock:
            if self._llm is not None:
                self._llm.close()
            self._llm = None
            self._vocabulary = None

    # -- proposing ---------------------------------------------------------------------------------

    def _prompt(self, function_ir: str, vocab: _LlamaVocabulary) -> tuple[list[int] | None, str | None]:
        """(prompt tokens, a note or None) or (None, why there is no prompt)."""
        try:
            prompt = self.profile.prompt_tokens(function_ir, vocab)
        except Exception as error:  # the normalizer or tokenizer could not read this input
            return None, f"could not build the model prompt: {error}"
        budget = self.n_ctx - self.profile.max_answer_tokens
        if len(prompt) <= budget:
            return prompt, None
        if self.profile.reads_prefix and budget >= MIN_PREFIX_TOKENS:
            # Keep the head of the IR and the final separator token that asks for the answer.
            return prompt[: budget - 1] + prompt[-1:], (
                f"function longer than the model's context: it read the first {budget - 2} of {len(prompt) - 2} IR tokens"
            )
        return None, (
            f"function too long for the model: {len(prompt)} prompt tokens, the context of "
            f"{self.n_ctx} leaves room for {max(budget, 0)}; no proposals"
        )

    def answer(self, function_ir: str, *, sample: int = 0, seed: int = 0) -> str | None:
        """The raw answer text of one sample (0: greedy; else temperature with seed `seed + sample`), or
        None when the function does not fit. For diagnostics and the export check; raises ModelError
        only when loading fails."""
        with self._lock:
            vocab = self._ensure_loaded()
            prompt, _ = self._prompt(function_ir, vocab)
            if prompt is None:
                return None
            return self._generate(vocab, prompt, greedy=sample == 0, seed=seed + sample)

    def propose(self, function_ir: str, samples: int, seed: int = 0) -> list[Proposal]:
        """Sample 0 is greedy, samples 1.. use temperature with seeds seed+1, ...; identical pass lists
        are returned once. Returns a `Proposals` list whose `note` says why it is empty or short."""
        samples = max(1, int(samples))
        with self._lock:
            vocab = self._ensure_loaded()
            prompt, why = self._prompt(function_ir, vocab)
            if prompt is None:
                return Proposals([], note=why)
            notes = [why] if why else []
            proposals: list[Proposal] = []
            seen: set[str] = set()
            unparsed = 0
            for index in range(samples):
                try:
                    text = self._generate(vocab, prompt, greedy=index == 0, seed=seed + index)
                except Exception as error:  # a llama.cpp decode failure must not take the server down
                    log.warning("generation failed for %s: %s", self.identity, error)
                    return Proposals(proposals, note=f"generation failed: {error}")
                proposal = self.profile.parse(text, self.known_passes)
                if proposal is None:
                    unparsed += 1
                    continue
                if proposal.passes in seen:
                    continue
                seen.add(proposal.passes)
                proposals.append(proposal)
            if unparsed:
                notes.append(f"{unparsed} of {samples} answers had no usable pass list")
            return Proposals(proposals, note="; ".join(notes) or None)

    def _generate(self, vocab: _LlamaVocabulary, prompt: list[int], *, greedy: bool, seed: int) -> str:
        llm = self._llm
        llm.set_seed(seed)
        if greedy:
            options = dict(temp=0.0, top_k=1, top_p=1.0, min_p=0.0)
        else:
            options = dict(temp=SAMPLE_TEMPERATURE, top_k=SAMPLE_TOP_K, top_p=SAMPLE_TOP_P, min_p=0.0)
        answer = bytearray()
        limit = min(self.profile.max_answer_tokens, self.n_ctx - len(prompt))
        count = 0
        for token in llm.generate(prompt, repeat_penalty=1.0, reset=True, **options):
            if vocab.is_end(token):
                break
            answer += vocab.piece(token)
            count += 1
            if count >= limit:
                break
            if self.profile.done(answer.decode("utf-8", errors="replace")):
                break
        return answer.decode("utf-8", errors="replace")
