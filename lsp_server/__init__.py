"""PassPilot: compiler-verified, learned size optimization of LLVM IR functions."""

__version__ = "0.1.0"
