"""Step 4: export the trained model to GGUF, quantize to Q8_0, and check llama.cpp against PyTorch.

    python -m training.model.export --run data/model/run --out data/model/passpilot.gguf --check 50

Writes `<out stem>-f32.gguf` (architecture `llama`, the SentencePiece vocabulary as a `llama` tokenizer)
and `<out>` quantized with llama.cpp (`--quant Q8_0`). Then, on `--check` held-out functions (the
dataset's validation split), compares PyTorch's greedy answer with the runtime's greedy answer
(`LlamaProposer.answer`: the raw .ll file -> normalized prompt -> llama.cpp) for both files, and reports
the agreement rate (identical answer text) and the pass-list agreement. `<run>/export.json` keeps the
report. Copy the result to `models/passpilot.gguf` to ship it as the default model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lsp_server.model import formats

from .common import WORK, log, resolve, write_json


def torch_answer(model, prompt: list[int], decode, eos: int) -> str:
    """PyTorch greedy answer, cut where the runtime would stop (EOS, limit, or `done`)."""
    from lsp_server.model.profiles import PassPilotProfile

    profile = PassPilotProfile()
    limit = min(profile.max_answer_tokens, model.hp.ctx - len(prompt))
    tokens = model.greedy(prompt, eos=eos, max_new=limit, stop=lambda out: profile.done(decode(out)))
    return decode(tokens)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=WORK / "run")
    parser.add_argument("--out", type=Path, default=WORK / "passpilot.gguf")
    parser.add_argument("--name", default="passpilot-default")
    parser.add_argument("--quant", default="Q8_0", choices=["Q8_0", "F16", "none"])
    parser.add_argument("--check", type=int, default=50, help="held-out functions compared (0: skip)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    from lsp_server.model import load_proposer

    from .gguf_llama import LlamaHParams, quantize, write_llama_gguf
    from .model import Llama
    from .tokenizer import vocabulary
    from .train import Data

    torch.set_num_threads(args.threads)
    run, out = resolve(args.run), resolve(args.out)
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    config = state["config"]
    hp = LlamaHParams(**config["hparams"])
    model = Llama(hp)
    model.load_state_dict(state["model"])
    model.eval()
    vocab = vocabulary(Path(config["tokenizer"]))

    f32 = out.with_name(out.stem + "-f32.gguf")
    write_llama_gguf(
        f32, hp, model.gguf_tensors(), vocab, name=args.name,
        extra_strings={"passpilot.format": "1", "passpilot.profile": "passpilot"},
    )
    log(f"wrote {f32} ({f32.stat().st_size / 1e6:.1f} MB, step {state['step']}, "
        f"{model.parameter_count() / 1e6:.2f}M parameters)")
    files = {"F32": f32}
    if args.quant != "none":
        quantize(f32, out, args.quant, threads=args.threads)
        log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {args.quant})")
        files[args.quant] = out

    report: dict = {"step": state["step"], "parameters": model.parameter_count(),
                    "files": {k: str(v) for k, v in files.items()}}
    if args.check:
        data = Data(Path(config["data"]))
        ids = list(data.val_ids) or list(data.train_ids)
        ids = [int(i) for i in ids[: args.check]]
        proposers = {kind: load_proposer(path, threads=args.threads) for kind, path in files.items()}
        decode = proposers["F32"].decode
        agree = {kind: 0 for kind in files}
        agree_passes = {kind: 0 for kind in files}
        checked = 0
        examples: list[dict] = []
        mismatches: list[dict] = []
        for index in ids:
            raw = resolve(data.meta[index]["path"]).read_text(errors="replace")
            want = torch_answer(model, data.prompt(index), decode, eos=vocab.eos)
            want_passes = formats.parse_answer(want).passes
            checked += 1
            for kind, proposer in proposers.items():
                got = proposer.answer(raw) or ""
                agree[kind] += got == want
                agree_passes[kind] += formats.parse_answer(got).passes == want_passes
                if len(examples) < 3 or (got != want and len(mismatches) < 5):
                    record = {"path": data.meta[index]["path"], "file": kind, "torch": want, "llama.cpp": got}
                    (examples if got == want else mismatches).append(record)
        report["check"] = {
            "functions": checked,
            "answer_agreement": {k: round(v / checked, 3) for k, v in agree.items()},
            "pass_list_agreement": {k: round(v / checked, 3) for k, v in agree_passes.items()},
            "examples": examples,
            "mismatches": mismatches,
        }
        for proposer in proposers.values():
            proposer.close()
        log(f"greedy answers identical to PyTorch on {checked} held-out functions: "
            + ", ".join(f"{k} {v / checked:.1%}" for k, v in agree.items())
            + "; same pass list: " + ", ".join(f"{k} {v / checked:.1%}" for k, v in agree_passes.items()))
    write_json(run / "export.json", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
