"""Ranking models: one forward pass orders a fixed set of pass lists, one control token per list.

A ranking GGUF is a `passpilot` Llama whose vocabulary ends with the control tokens `<|list0|>`,
`<|list1|>`, ... and the feature tokens `<|f:NAME=B|>` (`features.all_feature_tokens`), and whose metadata
`passpilot.ranking.lists` (a JSON array) holds the pass list of each list token. The prompt is the
function's counts as feature tokens, then its normalized IR (cut to its head when it is long):

    <s> <|f:n=7|> <|f:blocks=3|> ... normalized IR <|passes|>  ->  <|listJ|> {before} {after} </s>

The logits at `<|passes|>`, read over the list tokens only, score every list at once (the model is
trained to rank the lists by their gain under -Oz); with `passpilot.ranking.top` = m, the m
best-scored lists lead and the rest follow in the stored order (greedy on the training labels). The top
list's token is then fed back and the model writes its predicted instruction counts (for hover). The
lists are untrusted like any model output: the engine checks each against the vocabulary and measures it.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from . import formats
from .features import all_feature_tokens, feature_tokens
from .gguf_info import read_gguf_info
from .passes import filter_passes
from .profiles import PassPilotProfile, Vocabulary
from .runtime import LlamaProposer, _LlamaVocabulary
from .types import ModelError, Proposal, Proposals

log = logging.getLogger(__name__)

RANKING_LISTS_KEY = "passpilot.ranking.lists"
RANKING_TOP_KEY = "passpilot.ranking.top"  # how many lists go by score; the rest keep the file's (greedy coreset) order
# The context the model was trained on. The GGUF's own `llama.context_length` is at least llama.cpp's smallest
# context (256), which llama.cpp would otherwise warn about on every load; prompts are cut to this one.
RANKING_CONTEXT_KEY = "passpilot.ranking.context"
COUNTS_TOKENS = 12  # "before after" and EOS fit in far fewer
_COUNTS = re.compile(r"\s*(\d{1,9})\s+(\d{1,9})")


def list_token(index: int) -> str:
    return f"<|list{index}|>"


def ranking_lists(path: str | Path) -> list[str] | None:
    """The pass lists of a ranking GGUF, or None for any other file (errors are left to the loader)."""
    try:
        value = read_gguf_info(path).metadata.get(RANKING_LISTS_KEY)
    except (OSError, ValueError):
        return None
    if not isinstance(value, str):
        return None
    try:
        lists = json.loads(value)
    except json.JSONDecodeError:
        return None
    return [str(item) for item in lists] if isinstance(lists, list) and lists else None


def ranking_number(metadata: dict, key: str) -> int:
    """A non-negative number of a ranking GGUF's metadata (`GGUFInfo.metadata`); 0 when absent or unreadable.
    `passpilot.ranking.top`: how many of the best-scored lists lead (0: all of them)."""
    try:
        value = metadata.get(key)
        return max(0, int(value)) if value is not None else 0
    except (ValueError, TypeError):
        return 0


def blended_order(scores: list[float], top: int) -> list[int]:
    """The `top` best-scored lists, then the others in their own order (0: all by score).

    The lists are stored in greedy order on the training labels, where each adds the most beyond those
    before it; a ranking by each list's own value puts alike lists side by side, so after the model's
    first picks the greedy order covers more ground."""
    by_score = sorted(range(len(scores)), key=lambda i: -scores[i])
    if not top or top >= len(scores):
        return by_score
    lead = by_score[:top]
    return lead + [i for i in range(len(scores)) if i not in lead]


def format_counts(before: int, after: int) -> str:
    return f"{int(before)} {int(after)}"


class RankingProfile(PassPilotProfile):
    """The `passpilot` profile with feature tokens before the IR; its answer is a list token and two counts."""

    name = "passpilot-rank"
    max_answer_tokens = COUNTS_TOKENS + 1

    def check(self, vocab: Vocabulary) -> None:
        super().check(vocab)
        probe = all_feature_tokens()[0]
        if vocab.special_token(probe) is None:
            raise ModelError(f"this ranking GGUF has no feature tokens ({probe}): it was made for an older PassPilot")

    def prompt_tokens(self, function_ir: str, vocab: Vocabulary) -> list[int]:
        normalized = formats.prompt_text(function_ir)
        features = [vocab.special_token(token) for token in feature_tokens(normalized)]
        if any(token is None for token in features):
            raise ModelError("this ranking GGUF lacks some feature tokens")
        plain = self.prompt_tokens_from_text(normalized, vocab)
        return [plain[0], *features, *plain[1:]]  # type: ignore[list-item]


class RankingProposer(LlamaProposer):
    """A `PassProposer` that ranks the model's fixed lists; `rank` gives all of them, best first."""

    def __init__(self, path: Path, profile, *, lists: list[str], **options) -> None:
        super().__init__(path, RankingProfile(), **options)
        self.lists = lists
        self.top = ranking_number(self.info.metadata, RANKING_TOP_KEY)  # the metadata LlamaProposer already read
        self.trained_context = ranking_number(self.info.metadata, RANKING_CONTEXT_KEY)
        self.identity = f"{self.identity}, ranks {len(lists)} lists" + (f" (its best {self.top}, then the greedy order)" if self.top else "")
        self._list_tokens: list[int] = []

    def _load(self) -> _LlamaVocabulary:
        vocabulary = super()._load()
        if self.trained_context:
            self.n_ctx = min(self.n_ctx, self.trained_context)
        tokens = [vocabulary.special_token(list_token(i)) for i in range(len(self.lists))]
        missing = [list_token(i) for i, token in enumerate(tokens) if token is None]
        if missing:  # called under the lock: release the model here, not through close()
            self._llm.close()
            self._llm = None
            self._vocabulary = None
            raise ModelError(f"{self.path} names {len(self.lists)} ranked lists but lacks the tokens {', '.join(missing[:3])}")
        self._list_tokens = [int(t) for t in tokens]
        return vocabulary

    def scores(self, function_ir: str) -> tuple[list[float] | None, str | None]:
        """The model's score of each list (higher: try first), or (None, why not)."""
        with self._lock:
            vocab = self._ensure_loaded()
            prompt, why = self._prompt(function_ir, vocab)
            if prompt is None:
                return None, why
            return self._scores(prompt), why

    def prompt_scores(self, prompt: list[int]) -> list[float]:
        """The score of each list for a prompt already tokenized (training checks an export on its own prompts)."""
        with self._lock:
            self._ensure_loaded()
            return self._scores(prompt)

    def _scores(self, prompt: list[int]) -> list[float]:
        llm = self._llm
        llm.reset()
        llm.eval(prompt)
        logits = self._lib.llama_get_logits_ith(llm._ctx.ctx, -1)
        return [float(logits[token]) for token in self._list_tokens]

    def rank(self, function_ir: str) -> Proposals:
        """Every list, best first; the first carries the model's predicted counts. Never raises for a bad
        input or a failed decode (the `note` says why the result is empty)."""
        with self._lock:
            vocab = self._ensure_loaded()
            prompt, why = self._prompt(function_ir, vocab)
            if prompt is None:
                return Proposals([], note=why)
            try:
                scores = self._scores(prompt)
                order = blended_order(scores, self.top)
                answer = self._counts(vocab, prompt, self._list_tokens[order[0]])
            except Exception as error:  # a llama.cpp failure must not take the server down
                log.warning("ranking failed for %s: %s", self.identity, error)
                return Proposals([], note=f"ranking failed: {error}")
        match = _COUNTS.match(answer)
        before, after = (int(match.group(1)), int(match.group(2))) if match else (None, None)
        proposals = []
        for rank, index in enumerate(order):
            filtered = filter_passes(self.lists[index], self.known_passes)
            if not filtered.passes:
                continue
            raw = f"{list_token(index)} {answer}" if rank == 0 else list_token(index)
            proposals.append(Proposal(filtered.passes, before, after if rank == 0 else None, raw, filtered.note))
        return Proposals(proposals, note=why)

    def propose(self, function_ir: str, samples: int, seed: int = 0) -> list[Proposal]:
        """The `samples` best lists (a ranking model has no sampling)."""
        ranked = self.rank(function_ir)
        return Proposals(ranked[: max(1, int(samples))], note=ranked.note)

    def _counts(self, vocab: _LlamaVocabulary, prompt: list[int], token: int) -> str:
        """Greedy count text after the chosen list token (reuses the evaluated prompt)."""
        answer = bytearray()
        for count, generated in enumerate(self._llm.generate([*prompt, token], temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0, reset=True)):
            if vocab.is_end(generated) or count >= COUNTS_TOKENS:
                break
            answer += vocab.piece(generated)
        return answer.decode("utf-8", errors="replace")
