"""Model layer: propose `opt` pass lists for one function with a local GGUF model (llama.cpp).

Proposals are untrusted text; the engine checks every one with the real `opt`.

    proposer = load_proposer("models/passpilot.gguf", known_passes=names)
    for p in proposer.propose(function_ir, samples=4):
        ...  # p.passes, p.predicted_before, p.predicted_after, p.note
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from .profiles import PROFILES, get_profile
from .types import ModelError, PassProposer, Proposal, Proposals

__all__ = ["PROFILES", "ModelError", "PassProposer", "Proposal", "Proposals", "load_proposer"]


def load_proposer(
    path: str | Path,
    profile: str = "passpilot",
    gpu_layers: int = 0,
    threads: int = 0,
    known_passes: Collection[str] | None = None,
    *,
    n_ctx: int = 0,
) -> PassProposer:
    """A proposer for the GGUF at `path`. Checks the file and llama-cpp-python now; loads the weights on
    first use. Raises ModelError (user-facing message) for a missing or non-GGUF file, a missing
    llama-cpp-python or an unknown profile.

    `known_passes`: pass names the installed `opt` accepts; unknown names in answers are dropped and
    reported in `Proposal.note`. `n_ctx`: context tokens to allocate (0: the profile's default, capped by
    the model's training context).
    """
    chosen = get_profile(profile)
    model_path = Path(path).expanduser()
    if not model_path.exists():
        raise ModelError(f"model file not found: {model_path}")
    if not model_path.is_file():
        raise ModelError(f"model path is not a file: {model_path}")
    from .ranking import RankingProposer, ranking_lists
    from .runtime import LlamaProposer

    options = dict(gpu_layers=gpu_layers, threads=threads, known_passes=known_passes, n_ctx=n_ctx)
    lists = ranking_lists(model_path) if chosen.name == "passpilot" else None
    if lists:  # a ranking model (ranking.py): one forward pass orders its fixed lists
        return RankingProposer(model_path, chosen, lists=lists, **options)
    return LlamaProposer(model_path, chosen, **options)
