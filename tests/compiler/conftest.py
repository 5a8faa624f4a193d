"""The libllvm backend for tests: the real libLLVM of the installed opt's version, or a skip that says why."""

from __future__ import annotations

import pytest

from lsp_server.compiler import BackendUnavailable
from lsp_server.compiler.libllvm import LibLLVMBackend


def start_libllvm(opt_tool, **options) -> LibLLVMBackend:
    try:
        return LibLLVMBackend.start(opt_tool, **{"workers": 2, **options})
    except BackendUnavailable as unavailable:
        pytest.skip(f"needs the libLLVM of opt {opt_tool.version} (Debian: libllvm22): {unavailable.reason}")


@pytest.fixture(scope="module")
def libllvm(opt_tool):
    backend = start_libllvm(opt_tool)
    yield backend
    backend.close()
