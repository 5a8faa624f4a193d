"""`python -m lsp_server [--stdio | --tcp HOST:PORT]`: run the PassPilot language server."""

from __future__ import annotations

import argparse
import logging
import sys

from .server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lsp_server", description="PassPilot language server")
    parser.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default)")
    parser.add_argument("--tcp", metavar="HOST:PORT", help="listen on a TCP address instead of stdio")
    parser.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="passpilot: %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return serve(args.tcp)


if __name__ == "__main__":
    sys.exit(main())
