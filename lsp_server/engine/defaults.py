"""The engine's defaults, defined once: `EngineSettings`, the language server's settings (config.py) and
the CLI's options (cli.py) all take them from here, so that the editor and the command line measure alike
unless told otherwise. (The deep search's defaults are `deep.DeepOptions`'s.)"""

from __future__ import annotations

from ..compiler.runner import DEFAULT_TIMEOUT_S

BUDGET = 10  # compiler calls per function beyond -Oz (not an `EngineSettings` field: a change only re-measures)
MODEL_PATH = ""  # "" -> the shipped model, "none" -> no model
MODEL_PROFILE = "passpilot"
MODEL_SAMPLES = 4  # model answers per function
GPU_LAYERS = 0  # model layers offloaded to the GPU (-1: all)
MODEL_THREADS = 0  # llama.cpp CPU threads; 0: chosen from the model's size (model.runtime)
JOBS = 0  # parallel compiler runs; 0: all cores (optimizer.parallel_jobs)
TIMEOUT_S = DEFAULT_TIMEOUT_S  # seconds before a compiler run counts as hung
BACKEND = "auto"  # libLLVM workers when they load, else `opt` processes (compiler.backend)
