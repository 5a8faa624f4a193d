"""Function-level LLVM IR corpus builder (training set and benchmark).

Steps (each cached and resumable; see training/README.md):

  fetch   deb-src entry + ``apt-get source`` into data/src/<pkg>/ (csmith: generate programs)
  build   configure the package, compile every .c file to -O0 IR (clang-22, optnone
          disabled), split every module into one standalone module per defined function
          (llvm-extract-22 --func=NAME), into <out>/.build/<pkg>/
  dedupe  keep one function per normalized hash (lsp_server.ir.normalize), drop training
          functions whose hash is a benchmark function's hash; write <out>/<pkg>/*.ll and
          <out>/manifest.jsonl
  all     the three steps
  module  compile one translation unit whole (a big module for the language-server bench)

  python -m training.corpus all --benchmark                  # zlib, libyaml, expat
  python -m training.corpus all --packages lz4,cjson --csmith 200
  python -m training.corpus module sqlite3 sqlite3.c --out data/modules/sqlite3.ll
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from lsp_server.ir.normalize import normalized_hash

CLANG = os.environ.get("PASSPILOT_CLANG", "clang-22")
LLVM_EXTRACT = os.environ.get("PASSPILOT_LLVM_EXTRACT", "llvm-extract-22")
LLVM_AS = os.environ.get("PASSPILOT_LLVM_AS", "llvm-as-22")

BENCHMARK_PACKAGES = ["zlib", "libyaml", "expat"]
TRAINING_PACKAGES = [
    "lz4", "cjson", "brotli", "xz-utils", "pcre2", "libpng1.6", "dash",
    "nettle", "libsodium", "libxml2", "vim", "openssl",
]
CSMITH = "csmith"

#: folders holding bundled copies of other projects: their .c files are not compiled
BUNDLED_DIRS = {"deps", "compat", "third_party", "third-party", "vendor", "external", "contrib", "bundled"}
#: folders for other platforms: neither compiled nor used as include folders
PLATFORM_DIRS = {
    "win32", "win64", "windows", "msvc", "vstudio", "visualc", "vms", "os2", "amiga", "dos", "msdos",
    "wince", "watcom", "riscos", "beos", "qnx", "symbian", "macos", "mac", "nt", "msvs", "vc", "vc6",
    "os400", "vms_", "msvc-scripts",
}
#: never looked into
IGNORED_DIRS = {".pc", "debian", ".git", ".svn", "_passpilot_build", "autom4te.cache"}

COMPILE_FLAGS = [
    "-O0", "-Xclang", "-disable-O0-optnone", "-g0", "-S", "-emit-llvm", "-w",
    "-Wno-error=implicit-function-declaration", "-Wno-error=implicit-int",
    "-Wno-error=int-conversion", "-Wno-error=incompatible-pointer-types",
    "-Wno-error=incompatible-function-pointer-types",
]
#: extra flags some packages need (what their build system passes)
PACKAGE_FLAGS: dict[str, list[str]] = {
    "pcre2": ["-DPCRE2_CODE_UNIT_WIDTH=8"],
    "libsodium": ["-DCONFIGURED=1"],
    "libxml2": ["-D_REENTRANT"],
}
#: configure arguments per package (besides the defaults)
CONFIGURE_ARGS: dict[str, list[str]] = {
    "openssl": ["no-asm", "no-shared"],
    "pcre2": ["--enable-jit"],  # compiles the sljit JIT (pcre2_jit_compile.c includes it)
    "nettle": ["--disable-assembler"],  # the C versions of the routines (and no m4 needed)
}
#: commands run after configuring, to generate headers/sources the build needs
PREP_COMMANDS: dict[str, list[list[str]]] = {
    "dash": [["make", "-k", "-C", "src", "-j2"]],
    "nettle": [["make", "-k", "-j2"]],
    "openssl": [["make", "-j2", "build_generated"]],
    "vim": [["make", "-C", "src", "auto/osdef.h", "auto/pathdef.c"]],
    "sqlite3": [["make", "sqlite3.c"]],
}

#: passed to every ``make`` (PREP_COMMANDS and the ``make -n`` dry run): Debian patches can
#: leave configure.ac newer than the shipped configure, and the autotools (maybe not even
#: installed) must not be re-run
MAKE_NOOP_AUTOTOOLS = ["ACLOCAL=true", "AUTOMAKE=true", "AUTOCONF=true", "AUTOHEADER=true"]

#: edits of generated configuration headers (file relative to the build dir, old, new):
#: Debian's expat security patches test ``#if XML_DTD == 1``, which the CMake-generated
#: header (``#define XML_DTD``) does not satisfy; autotools would define it as 1
CONFIG_FIXUPS: dict[str, list[tuple[str, str, str]]] = {
    "expat": [("expat_config.h", "#define XML_DTD\n", "#define XML_DTD 1\n")],
}

MIN_INSTRUCTIONS = 2  # functions with fewer instructions are skipped
COMPILE_TIMEOUT = 300
EXTRACT_TIMEOUT = 120
CONFIGURE_TIMEOUT = 900

SOURCES_FILE = Path("/etc/apt/sources.list.d/passpilot-src.sources")
SOURCES_TEXT = """\
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def log(msg: str) -> None:
    print(msg, flush=True)


def _run(cmd: list[str], *, cwd: Path | None = None, timeout: float | None = None,
         env: dict | None = None, log_file: Path | None = None) -> int:
    """Run ``cmd`` (no shell); output goes to ``log_file`` or is discarded. Returns the
    exit status (124 on timeout, 127 when the program is missing)."""
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL
    try:
        return subprocess.run(cmd, cwd=cwd, timeout=timeout, env=env, stdout=out,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
    except subprocess.TimeoutExpired:
        return 124
    except FileNotFoundError:
        return 127
    finally:
        if log_file:
            out.close()


# ============================================================================ fetch


def ensure_deb_src() -> None:
    """deb-src entries for bookworm (+updates, +security), package lists, dpkg-dev."""
    wrote = False
    if not SOURCES_FILE.exists() or SOURCES_FILE.read_text() != SOURCES_TEXT:
        SOURCES_FILE.write_text(SOURCES_TEXT)
        wrote = True
    have_lists = any(Path("/var/lib/apt/lists").glob("*debian.org_debian_dists_bookworm_main_source_Sources*"))
    if wrote or not have_lists:
        log("apt-get update ...")
        subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)
    if shutil.which("dpkg-source") is None:
        ensure_apt_package("dpkg-dev")


def ensure_apt_package(name: str) -> None:
    if subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True,
                      text=True).stdout.strip().endswith("installed"):
        return
    log(f"apt-get install {name} ...")
    subprocess.run(["apt-get", "install", "-y", "-q", name], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def source_dir(src_root: Path, pkg: str) -> Path | None:
    """The unpacked source tree of ``pkg`` (None before ``fetch``)."""
    marker = src_root / pkg / ".passpilot-fetched"
    if not marker.exists():
        return None
    d = src_root / pkg / marker.read_text().splitlines()[0].strip()
    return d if d.is_dir() else None


def fetch_package(src_root: Path, pkg: str) -> Path:
    d = source_dir(src_root, pkg)
    if d is not None:
        log(f"[fetch] {pkg}: already unpacked in {d}")
        return d
    ensure_deb_src()
    pkg_dir = src_root / pkg
    pkg_dir.mkdir(parents=True, exist_ok=True)
    # the newest version first; older ones when a mirror lacks some file of the newest
    attempts = [pkg] + [f"{pkg}={v}" for v in _source_versions(pkg)[1:]]
    rc, dirs = -1, []
    for spec in attempts:
        log(f"[fetch] {pkg}: apt-get source {spec} ...")
        rc = _run(["apt-get", "source", "-q", "--only-source", spec], cwd=pkg_dir, timeout=1800,
                  log_file=pkg_dir / "fetch.log")
        dirs = [p for p in pkg_dir.iterdir() if p.is_dir()]
        if rc == 0 and len(dirs) == 1:
            break
        for p in pkg_dir.iterdir():  # partial download: start afresh
            if p.name != "fetch.log":
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    if rc != 0 or len(dirs) != 1:
        raise RuntimeError(f"apt-get source {pkg} failed (rc={rc}, dirs={dirs}); see {pkg_dir / 'fetch.log'}")
    dsc = sorted(p.name for p in pkg_dir.glob("*.dsc"))
    (pkg_dir / ".passpilot-fetched").write_text(f"{dirs[0].name}\n{dsc[0] if dsc else spec}\n")
    log(f"[fetch] {pkg}: unpacked {dirs[0]} ({dsc[0] if dsc else spec})")
    return dirs[0]


def _source_versions(pkg: str) -> list[str]:
    """Versions of source package ``pkg`` known to apt, newest first."""
    res = subprocess.run(["apt-cache", "showsrc", "--only-source", pkg], capture_output=True, text=True)
    versions = []
    for line in res.stdout.splitlines():
        if line.startswith("Version:"):
            v = line.split(":", 1)[1].strip()
            if v not in versions:
                versions.append(v)

    def newer_first(vs: list[str]) -> list[str]:
        out: list[str] = []
        for v in vs:  # insertion sort with dpkg's comparison
            i = 0
            while i < len(out) and subprocess.run(
                    ["dpkg", "--compare-versions", out[i], "gt", v]).returncode == 0:
                i += 1
            out.insert(i, v)
        return out

    return newer_first(versions)


def csmith_include() -> Path:
    for cand in sorted(Path("/usr/include").glob("csmith*")):
        if (cand / "csmith.h").exists():
            return cand
    raise RuntimeError("csmith.h not found under /usr/include/csmith*")


def fetch_csmith(src_root: Path, count: int) -> Path:
    """Generate ``count`` csmith programs with seeds 1..count into data/src/csmith/."""
    ensure_apt_package("csmith")
    ensure_apt_package("libcsmith-dev")  # csmith.h, safe_math.h
    d = src_root / CSMITH
    d.mkdir(parents=True, exist_ok=True)
    made = 0
    for seed in range(1, count + 1):
        f = d / f"csmith_{seed:05d}.c"
        if f.exists() and f.stat().st_size > 0:
            continue
        tmp = f.with_suffix(".tmp")
        rc = _run(["csmith", "--seed", str(seed), "--output", str(tmp)], timeout=60)
        if rc == 0 and tmp.exists():
            tmp.rename(f)
            made += 1
        else:
            tmp.unlink(missing_ok=True)
            log(f"[fetch] csmith seed {seed}: failed (rc={rc})")
    log(f"[fetch] csmith: {made} new programs, {count} wanted, in {d}")
    return d


# ============================================================================ configure


def _walk(root: Path):
    """(dirpath, dirnames, filenames) below ``root`` without ignored folders, sorted."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in IGNORED_DIRS and not d.startswith("."))
        yield Path(dirpath), dirnames, sorted(filenames)


def configure_package(pkg: str, srcdir: Path, *, force: bool = False) -> dict:
    """Run the package's configure step once (cached in ``.passpilot-configured``)."""
    marker = srcdir / ".passpilot-configured"
    if marker.exists() and not force:
        return json.loads(marker.read_text())
    logf = srcdir / "passpilot-configure.log"
    logf.unlink(missing_ok=True)
    env = {**os.environ, "CC": CLANG, "CFLAGS": "-O0 -g0 -w"}
    info: dict = {"method": None, "rc": None, "build_dir": None, "prep": []}
    t0 = time.time()
    root = configure_root(srcdir)
    if (not (root / "configure").exists() and not (root / "CMakeLists.txt").exists()
            and (root / "configure.ac").exists()):
        # a git snapshot without the generated configure (libsodium): generate it
        for tool in ("autoconf", "automake", "libtool"):
            ensure_apt_package(tool)
        info["autoreconf"] = _run(["autoreconf", "-fi"], cwd=root, timeout=CONFIGURE_TIMEOUT, env=env,
                                  log_file=logf)
    info["root"] = str(root)
    if pkg == "openssl" and (root / "Configure").exists():
        info["method"] = "Configure"
        info["rc"] = _run(["perl", "./Configure", *CONFIGURE_ARGS.get(pkg, [])], cwd=root,
                          timeout=CONFIGURE_TIMEOUT, env=env, log_file=logf)
    elif (root / "configure").exists():
        info["method"] = "configure"
        script = root / "configure"
        script.chmod(script.stat().st_mode | 0o111)
        info["rc"] = _run(["./configure", *CONFIGURE_ARGS.get(pkg, [])], cwd=root,
                          timeout=CONFIGURE_TIMEOUT, env=env, log_file=logf)
    elif (root / "CMakeLists.txt").exists() and shutil.which("cmake"):
        info["method"] = "cmake"
        bdir = srcdir / "_passpilot_build"
        info["build_dir"] = str(bdir)
        info["rc"] = _run(["cmake", "-S", str(root), "-B", str(bdir), f"-DCMAKE_C_COMPILER={CLANG}",
                           "-DCMAKE_BUILD_TYPE=Debug", "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON",
                           *CONFIGURE_ARGS.get(pkg, [])],
                          cwd=srcdir, timeout=CONFIGURE_TIMEOUT, env=env, log_file=logf)
    if info["method"] in ("configure", "Configure"):
        # the compile commands a build would run, before anything is built (make -n prints
        # nothing for up-to-date objects)
        t1 = time.time()
        db = make_database(root)
        (srcdir / ".passpilot-make-db.json").write_text(json.dumps(db))
        info["make_db_files"] = len(db)
        log(f"[configure] {pkg}: make -n: flags for {len(db)} files ({time.time() - t1:.1f} s)")
    prep = list(PREP_COMMANDS.get(pkg, []))
    if pkg == "openssl":
        # build_generated makes only the mandatory headers; the provider DER headers/sources
        # and apps/progs.h are generated from *.in templates on demand
        targets = sorted(str(p.relative_to(root))[:-3] for p in root.rglob("*.in")
                         if p.name.endswith((".h.in", ".c.in")) and "test" not in p.parts)
        prep.append(["make", "-k", "-j2", "apps/progs.h", "apps/progs.c", *targets])
    for cmd in prep:
        if cmd[0] == "make":
            cmd = cmd + MAKE_NOOP_AUTOTOOLS
        rc = _run(cmd, cwd=root, timeout=CONFIGURE_TIMEOUT, env=env, log_file=logf)
        info["prep"].append({"cmd": cmd, "rc": rc})
    for rel, before, after in CONFIG_FIXUPS.get(pkg, []):
        f = Path(info["build_dir"] or root) / rel
        if f.exists() and before in f.read_text():
            f.write_text(f.read_text().replace(before, after))
            info.setdefault("fixups", []).append(rel)
    info["seconds"] = round(time.time() - t0, 1)
    marker.write_text(json.dumps(info))
    log(f"[configure] {pkg}: {info['method']} rc={info['rc']} prep={[p['rc'] for p in info['prep']]} "
        f"({info['seconds']} s)")
    return info


def configure_root(srcdir: Path) -> Path:
    """Where the build system lives: the top folder, else the shallowest subfolder with a
    configure script or a CMakeLists.txt."""
    names = ("configure", "Configure", "CMakeLists.txt", "configure.ac")
    if any((srcdir / n).exists() for n in names):
        return srcdir
    for d, _dirs, files in _walk(srcdir):
        rel = d.relative_to(srcdir)
        if len(rel.parts) > 2 or _excluded(rel / "x"):
            continue
        if any(n in files for n in names):
            return d
    return srcdir


def _pp_flags(args: list[str], directory: Path) -> list[str]:
    """The preprocessor and language-standard flags of a compiler argument list, paths made
    absolute against ``directory``."""
    flags: list[str] = []

    def path(val: str) -> str:
        p = directory / val
        return str(p.resolve()) if p.exists() else val

    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-I", "-D", "-U", "-include", "-isystem", "-iquote") and i + 1 < len(args):
            val = args[i + 1]
            flags += [a, val if a in ("-D", "-U") else path(val)]
            i += 2
            continue
        if a.startswith("-I") and len(a) > 2:
            flags.append("-I" + path(a[2:]))
        elif a.startswith(("-D", "-U")) and len(a) > 2:
            flags.append(a)
        elif a.startswith(("-std=", "-m")) and a != "-m":
            flags.append(a)  # language standard, target features (-mavx2, -maes, ...)
        i += 1
    return flags


def compile_database(build_dir: str | None) -> dict[str, list[str]]:
    """Preprocessor/language flags per source file (absolute path) from a CMake
    compile_commands.json in ``build_dir`` ({} without one)."""
    if not build_dir:
        return {}
    f = Path(build_dir) / "compile_commands.json"
    if not f.exists():
        return {}
    import shlex

    out: dict[str, list[str]] = {}
    for entry in json.loads(f.read_text()):
        directory = Path(entry.get("directory", build_dir))
        args = entry.get("arguments") or shlex.split(entry.get("command", ""))
        src = str((directory / entry["file"]).resolve())
        if src not in out:
            out[src] = _pp_flags(args[1:], directory)
    return out


_COMPILER_NAMES = ("clang", "gcc", "cc")
_ENTER_DIR = re.compile(r"^\S*make(?:\[\d+\])?: (Entering|Leaving) directory '(.*)'$")


def make_database(root: Path, timeout: float = 600) -> dict[str, list[str]]:
    """Preprocessor flags per source file (absolute path) from the compile commands a
    ``make -n`` (dry run) prints in ``root``: what an autotools/Makefile build would pass."""
    import shlex

    try:
        res = subprocess.run(["make", "-n", "-k", "-w", "V=1", *MAKE_NOOP_AUTOTOOLS], cwd=root,
                             capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                             env={**os.environ, "CC": CLANG})
    except (subprocess.TimeoutExpired, FileNotFoundError):
        return {}
    out: dict[str, list[str]] = {}
    dirs = [root]
    lines: list[str] = []
    pending = ""
    for raw in res.stdout.splitlines():  # join recipe lines continued with a backslash
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    for line in lines:
        m = _ENTER_DIR.match(line.strip())
        if m:
            if m.group(1) == "Entering":
                dirs.append(Path(m.group(2)))
            elif len(dirs) > 1:
                dirs.pop()
            continue
        if " -c" not in line or ".c" not in line:
            continue
        try:
            lex = shlex.shlex(line, posix=True, punctuation_chars=True)
            lex.whitespace_split = True
            tokens = list(lex)
        except ValueError:
            continue
        cwd = dirs[-1]
        commands: list[list[str]] = [[]]
        for t in tokens:
            if t in (";", "&&", "||", "|", "(", ")"):
                commands.append([])
            else:
                commands[-1].append(t)
        for cmd in commands:
            if cmd[:1] == ["cd"] and len(cmd) > 1:
                cwd = (cwd / cmd[1]).resolve()
                continue
            idx = next((i for i, t in enumerate(cmd)
                        if os.path.basename(t).startswith(_COMPILER_NAMES)), None)
            if idx is None or "-c" not in cmd:
                continue
            args = cmd[idx + 1:]
            srcs = [a for a in args if a.endswith(".c") and not a.startswith("-")]
            if len(srcs) != 1:
                continue
            src = (cwd / srcs[0]).resolve()  # may not exist yet (generated by the build)
            if str(src) not in out:
                out[str(src)] = _pp_flags(args, cwd)
    return out


def build_database(pkg: str, srcdir: Path, info: dict) -> dict[str, list[str]]:
    """The build system's flags per file: CMake's compile database, else ``make -n``'s
    (cached in ``<src>/.passpilot-make-db.json``)."""
    db = compile_database(info.get("build_dir"))
    if db or info.get("method") not in ("configure", "Configure"):
        return db
    cache = srcdir / ".passpilot-make-db.json"
    if cache.exists():
        return json.loads(cache.read_text())
    t0 = time.time()
    db = make_database(Path(info.get("root") or srcdir))
    cache.write_text(json.dumps(db))
    log(f"[configure] {pkg}: make -n: flags for {len(db)} files ({time.time() - t0:.1f} s)")
    return db


def _excluded(rel: Path) -> bool:
    parts = {p.lower() for p in rel.parts[:-1]}
    return bool(parts & BUNDLED_DIRS or parts & PLATFORM_DIRS)


def include_dirs(srcdir: Path, build_dir: str | None) -> list[Path]:
    """Folders holding headers: the build folder, the root, include/ and src/, then the rest
    (shallow first). Folders for other platforms are left out."""
    found: list[Path] = []
    for d, _dirs, files in _walk(srcdir):
        rel = d.relative_to(srcdir)
        if {p.lower() for p in rel.parts} & PLATFORM_DIRS:
            continue
        if any(f.endswith(".h") for f in files):
            found.append(d)
    first: list[Path] = []
    if build_dir and Path(build_dir).is_dir():
        first.append(Path(build_dir))
        for d, _dirs, files in os.walk(build_dir):
            if d != build_dir and "CMakeFiles" not in d and any(f.endswith(".h") for f in files):
                first.append(Path(d))
    for name in ("", "include", "src", "lib"):
        p = srcdir / name if name else srcdir
        if p.is_dir():
            first.append(p)
    rest = sorted((d for d in found if d not in first), key=lambda p: (len(p.parts), str(p)))
    return first + rest


def c_files(srcdir: Path) -> list[Path]:
    """The .c files to compile (relative paths): bundled copies and other-platform folders
    are left out; tests, examples and fuzzers are kept."""
    out = []
    for d, _dirs, files in _walk(srcdir):
        for f in files:
            if f.endswith(".c"):
                rel = (d / f).relative_to(srcdir)
                if not _excluded(rel):
                    out.append(rel)
    return out


def compile_command(src: Path, out: Path, incs: list[Path], extra: list[str]) -> list[str]:
    cmd = [CLANG, *COMPILE_FLAGS, *extra]
    for d in incs:
        cmd += ["-I", str(d)]
    return cmd + [str(src), "-o", str(out)]


# ============================================================================ build


def _safe(name: str, limit: int = 80) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:limit]
    return s or "_"


def defined_functions(module_text: str) -> list[tuple[str, int]]:
    """(name, instruction count) of every function defined in the module (llvmlite)."""
    import llvmlite.binding as llvm

    mod = llvm.parse_assembly(module_text)
    out = []
    for fn in mod.functions:
        if fn.is_declaration:
            continue
        out.append((fn.name, sum(len(list(bb.instructions)) for bb in fn.blocks)))
    return out


def count_instructions(module_text: str) -> int:
    return sum(n for _name, n in defined_functions(module_text))


def split_module(module_path: Path, funcs_dir: Path, *, min_instructions: int = MIN_INSTRUCTIONS,
                 keep_const_init: bool = False) -> tuple[list[dict], dict]:
    """One standalone module per defined function of ``module_path`` into ``funcs_dir``.

    Returns (records, counters); a record has function, hash, instructions, file (name in
    ``funcs_dir``)."""
    funcs_dir.mkdir(parents=True, exist_ok=True)
    counts = {"functions": 0, "skipped_small": 0, "extract_failed": 0}
    # llvm-extract reads bitcode lazily, about twice as fast as text: convert once per module
    extract_input = module_path
    bc = module_path.with_suffix(".bc")
    if shutil.which(LLVM_AS) and subprocess.run([LLVM_AS, str(module_path), "-o", str(bc)],
                                                capture_output=True).returncode == 0:
        extract_input = bc
    try:
        return _split(module_path, extract_input, funcs_dir, counts, min_instructions, keep_const_init)
    finally:
        bc.unlink(missing_ok=True)


def _split(module_path: Path, extract_input: Path, funcs_dir: Path, counts: dict,
           min_instructions: int, keep_const_init: bool) -> tuple[list[dict], dict]:
    records: list[dict] = []
    for name, n_instr in defined_functions(module_path.read_text()):
        counts["functions"] += 1
        if n_instr < min_instructions:
            counts["skipped_small"] += 1
            continue
        cmd = [LLVM_EXTRACT, f"--func={name}", "-S", str(extract_input), "-o", "-"]
        if keep_const_init:
            cmd.insert(1, "--keep-const-init")
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=EXTRACT_TIMEOUT)
        except subprocess.TimeoutExpired:
            counts["extract_failed"] += 1
            continue
        if res.returncode != 0 or "define " not in res.stdout:
            counts["extract_failed"] += 1
            continue
        text = res.stdout
        h = normalized_hash(text)
        fname = f"{h[:16]}__{_safe(name)}.ll"
        target = funcs_dir / fname
        if not target.exists():
            tmp = target.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.rename(target)
        records.append({"function": name, "hash": h, "instructions": n_instr, "file": fname})
    return records, counts


def _first_error(text: str) -> str:
    for line in text.splitlines():
        if "error:" in line:
            return line.strip()[:300]
    return text.strip().splitlines()[-1][:300] if text.strip() else ""


def build_unit(task: dict) -> dict:
    """Compile one .c file and split it. Runs in a worker process."""
    src = Path(task["src"])
    work = Path(task["work"])
    ll = work / "ll" / (task["key"] + ".ll")
    ll.parent.mkdir(parents=True, exist_ok=True)
    result = {"source": task["rel"], "status": None, "functions": [], "counts": {}}
    t0 = time.time()
    cmd = compile_command(src, ll, [Path(p) for p in task["incs"]], task["extra"])
    try:
        res = subprocess.run(cmd, cwd=task["cwd"], capture_output=True, text=True,
                             timeout=COMPILE_TIMEOUT)
        ok = res.returncode == 0 and ll.exists()
        err = "" if ok else _first_error(res.stderr)
    except subprocess.TimeoutExpired:
        ok, err = False, f"timeout after {COMPILE_TIMEOUT} s"
    if not ok:
        result.update(status="compile_failed", error=err)
        ll.unlink(missing_ok=True)
    else:
        try:
            recs, counts = split_module(ll, work / "funcs", min_instructions=task["min_instructions"],
                                        keep_const_init=task["keep_const_init"])
            result.update(status="ok", functions=recs, counts=counts)
        except Exception as exc:  # llvmlite parse error and the like
            result.update(status="split_failed", error=f"{type(exc).__name__}: {exc}"[:300])
        if not task["keep_modules"]:
            ll.unlink(missing_ok=True)
    result["seconds"] = round(time.time() - t0, 2)
    unit_file = Path(task["unit_file"])
    tmp = unit_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.rename(unit_file)
    return result


def _unit_key(rel: Path) -> str:
    s = str(rel).replace(os.sep, "__")
    if len(s) > 150:
        s = s[:120] + "_" + hashlib.sha1(s.encode()).hexdigest()[:12]
    return s


def build_package(pkg: str, src_root: Path, out: Path, args) -> dict:
    t0 = time.time()
    work = out / ".build" / pkg
    units = work / "units"
    units.mkdir(parents=True, exist_ok=True)
    if pkg == CSMITH:
        srcdir = src_root / CSMITH
        rels = sorted(p.relative_to(srcdir) for p in srcdir.glob("csmith_*.c"))
        if args.csmith:
            rels = rels[: args.csmith]
        incs = [csmith_include()]
        extra: list[str] = []
    else:
        srcdir = source_dir(src_root, pkg)
        if srcdir is None:
            raise RuntimeError(f"{pkg}: not fetched (run the fetch step)")
        info = configure_package(pkg, srcdir)
        rels = c_files(srcdir)
        incs = include_dirs(srcdir, info.get("build_dir"))
        extra = (["-DHAVE_CONFIG_H"] if _has_config_h(srcdir, info.get("build_dir")) else []) \
            + PACKAGE_FLAGS.get(pkg, [])
    ccdb = build_database(pkg, srcdir, info) if pkg != CSMITH else {}
    tasks = []
    for rel in rels:
        key = _unit_key(rel)
        unit_file = units / (key + ".json")
        if unit_file.exists() and not args.rebuild:
            if not (args.retry_failed and json.loads(unit_file.read_text())["status"] != "ok"):
                continue
        tasks.append({
            "src": str(srcdir / rel), "rel": str(rel), "key": key, "work": str(work),
            "cwd": str(srcdir), "incs": [str(p) for p in incs],
            "extra": _file_flags(ccdb, srcdir / rel, extra, pkg),
            "unit_file": str(unit_file), "min_instructions": args.min_instructions,
            "keep_const_init": args.keep_const_init, "keep_modules": args.keep_modules,
        })
    log(f"[build] {pkg}: {len(rels)} .c files, {len(rels) - len(tasks)} cached, "
        f"{len(tasks)} to do, {len(incs)} include dirs, build-system flags for {len(ccdb)} files")
    done = 0
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as ex:
        for res in ex.map(build_unit, tasks):  # ordered; each unit's result is saved by the worker
            done += 1
            if res["status"] != "ok" and args.verbose:
                log(f"  {pkg}/{res['source']}: {res['status']}: {res.get('error', '')}")
            if done % 50 == 0:
                log(f"  {pkg}: {done}/{len(tasks)} files ({time.time() - t0:.0f} s)")
    summary = summarize_package(pkg, work, rels)
    summary["seconds_this_run"] = round(time.time() - t0, 1)
    (work / "build.json").write_text(json.dumps(summary, indent=1))
    log(f"[build] {pkg}: files {summary['files']} ok {summary['compiled']} compile_failed "
        f"{summary['compile_failed']} split_failed {summary['split_failed']}; functions "
        f"{summary['functions_defined']} extracted {summary['functions_extracted']} skipped_small "
        f"{summary['skipped_small']} extract_failed {summary['extract_failed']} "
        f"({summary['seconds_this_run']} s)")
    return summary


def _file_flags(ccdb: dict[str, list[str]], src: Path, generic: list[str], pkg: str) -> list[str]:
    """The build system's flags for ``src`` when the compile database has it, else ``generic``."""
    flags = ccdb.get(str(src.resolve()))
    if flags is None:
        return generic
    return flags + PACKAGE_FLAGS.get(pkg, [])


def _has_config_h(srcdir: Path, build_dir: str | None) -> bool:
    roots = [srcdir] + ([Path(build_dir)] if build_dir else [])
    for root in roots:
        for d, _dirs, files in _walk(root):
            if "config.h" in files:
                return True
    return False


def summarize_package(pkg: str, work: Path, rels: list[Path]) -> dict:
    s = {"pkg": pkg, "files": len(rels), "compiled": 0, "compile_failed": 0, "split_failed": 0,
         "functions_defined": 0, "functions_extracted": 0, "skipped_small": 0, "extract_failed": 0,
         "errors": {}}
    for rel in rels:
        f = work / "units" / (_unit_key(rel) + ".json")
        if not f.exists():
            continue
        r = json.loads(f.read_text())
        if r["status"] == "ok":
            s["compiled"] += 1
            c = r["counts"]
            s["functions_defined"] += c.get("functions", 0)
            s["skipped_small"] += c.get("skipped_small", 0)
            s["extract_failed"] += c.get("extract_failed", 0)
            s["functions_extracted"] += len(r["functions"])
        else:
            s[r["status"]] = s.get(r["status"], 0) + 1
            s["errors"][r["source"]] = r.get("error", "")
    return s


def unit_records(work: Path) -> list[dict]:
    """All function records of a built package, sorted by (source, function)."""
    recs = []
    for f in sorted((work / "units").glob("*.json")):
        r = json.loads(f.read_text())
        for fr in r.get("functions", []):
            recs.append({**fr, "source": r["source"]})
    recs.sort(key=lambda r: (r["source"], r["function"], r["hash"]))
    return recs


# ============================================================================ dedupe


def load_hashes(manifest: Path) -> set[str]:
    hashes = set()
    with open(manifest) as fh:
        for line in fh:
            if line.strip():
                hashes.add(json.loads(line)["hash"])
    return hashes


def dedupe_records(records: list[dict], exclude: set[str] = frozenset()) -> tuple[list[dict], dict]:
    """Keep the first record per hash; drop hashes in ``exclude`` (decontamination).

    Returns (kept, counters) with counters ``duplicates`` and ``benchmark_matches``."""
    seen: set[str] = set()
    kept = []
    c = {"duplicates": 0, "benchmark_matches": 0}
    for r in records:
        if r["hash"] in exclude:
            c["benchmark_matches"] += 1
            continue
        if r["hash"] in seen:
            c["duplicates"] += 1
            continue
        seen.add(r["hash"])
        kept.append(r)
    return kept, c


def _package_order(build_root: Path, default: list[str]) -> list[str]:
    built = {p.name for p in build_root.iterdir() if (p / "units").is_dir()} if build_root.is_dir() else set()
    order = [p for p in default if p in built]
    return order + sorted(built - set(order))


def dedupe(out: Path, *, default_order: list[str], exclude: set[str] | None,
           exclude_source: str | None) -> dict:
    """Dedupe every package built under ``out/.build`` (in ``default_order`` first) into
    ``out/<pkg>/`` and ``out/manifest.jsonl``."""
    t0 = time.time()
    build_root = out / ".build"
    seen: set[str] = set()
    exclude = exclude or set()
    stats = {"packages": {}, "decontaminated_against": exclude_source}
    manifest_tmp = out / "manifest.jsonl.tmp"
    total = {"functions": 0, "kept": 0, "duplicates": 0, "benchmark_matches": 0}
    with open(manifest_tmp, "w") as mf:
        for pkg in _package_order(build_root, default_order):
            recs = unit_records(build_root / pkg)
            kept, c = dedupe_records(recs, exclude | seen)
            # split exclude hits into benchmark matches and cross-package duplicates
            bench = sum(1 for r in recs if r["hash"] in exclude)
            cross = c["benchmark_matches"] - bench
            c = {"functions": len(recs), "kept": len(kept), "duplicates": c["duplicates"] + cross,
                 "benchmark_matches": bench}
            pkg_dir = out / pkg
            if pkg_dir.exists():
                shutil.rmtree(pkg_dir)
            pkg_dir.mkdir(parents=True)
            for r in kept:
                seen.add(r["hash"])
                srcf = build_root / pkg / "funcs" / r["file"]
                dst = pkg_dir / r["file"]
                try:
                    os.link(srcf, dst)
                except OSError:
                    shutil.copyfile(srcf, dst)
                mf.write(json.dumps({
                    "pkg": pkg, "source": r["source"], "function": r["function"], "hash": r["hash"],
                    "instructions": r["instructions"], "path": f"{pkg}/{r['file']}",
                }) + "\n")
            stats["packages"][pkg] = c
            for k in total:
                total[k] += c[k]
            log(f"[dedupe] {pkg}: functions {c['functions']} kept {c['kept']} duplicates "
                f"{c['duplicates']} benchmark_matches {c['benchmark_matches']}")
    manifest_tmp.rename(out / "manifest.jsonl")
    stats["total"] = total
    stats["seconds"] = round(time.time() - t0, 1)
    (out / "stats.json").write_text(json.dumps(stats, indent=1))
    log(f"[dedupe] total: functions {total['functions']} kept {total['kept']} duplicates "
        f"{total['duplicates']} benchmark_matches {total['benchmark_matches']} -> {out / 'manifest.jsonl'}")
    return stats


# ============================================================================ module mode


def build_module(pkg: str, file: str, out_file: Path, src_root: Path) -> dict:
    srcdir = fetch_package(src_root, pkg)
    info = configure_package(pkg, srcdir)
    cand = srcdir / file
    if not cand.is_file():
        matches = sorted((p for p in srcdir.rglob(Path(file).name) if p.is_file()),
                         key=lambda p: (len(p.parts), str(p)))
        if not matches:
            raise FileNotFoundError(f"{file} not found in {srcdir}")
        cand = matches[0]
    incs = include_dirs(srcdir, info.get("build_dir"))
    extra = (["-DHAVE_CONFIG_H"] if _has_config_h(srcdir, info.get("build_dir")) else []) \
        + PACKAGE_FLAGS.get(pkg, [])
    extra = _file_flags(build_database(pkg, srcdir, info), cand, extra, pkg)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    res = subprocess.run(compile_command(cand, out_file, incs, extra), cwd=srcdir,
                         capture_output=True, text=True, timeout=1800)
    if res.returncode != 0:
        # retry without config.h (e.g. an amalgamation that does not want it)
        res = subprocess.run(compile_command(cand, out_file, incs, PACKAGE_FLAGS.get(pkg, [])),
                             cwd=srcdir, capture_output=True, text=True, timeout=1800)
    if res.returncode != 0:
        raise RuntimeError(f"compiling {cand} failed: {_first_error(res.stderr)}")
    text = out_file.read_text()
    funcs = defined_functions(text)
    info = {"module": str(out_file), "source": str(cand.relative_to(srcdir)), "lines": text.count("\n"),
            "functions": len(funcs), "instructions": sum(n for _, n in funcs),
            "seconds": round(time.time() - t0, 1)}
    log(f"[module] {out_file}: {info['lines']} lines, {info['functions']} defined functions, "
        f"{info['instructions']} instructions (from {pkg}/{info['source']}, {info['seconds']} s)")
    return info


# ============================================================================ CLI


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.corpus", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["fetch", "build", "dedupe", "all", "module"])
    ap.add_argument("module_args", nargs="*", help="module step: PKG FILE.c")
    ap.add_argument("--packages", help="comma-separated Debian source packages "
                    "(default: the training list, or the benchmark list with --benchmark)")
    ap.add_argument("--benchmark", action="store_true", help=f"build the benchmark ({', '.join(BENCHMARK_PACKAGES)})")
    ap.add_argument("--csmith", type=int, default=0, metavar="N",
                    help="also generate/build N csmith programs (seeds 1..N) as package 'csmith'")
    ap.add_argument("--out", type=Path, help="output folder (default data/corpus, data/benchmark with "
                    "--benchmark); for the module step the output .ll file")
    ap.add_argument("--src", type=Path, default=Path("data/src"), help="where sources are unpacked")
    ap.add_argument("--benchmark-dir", type=Path, default=Path("data/benchmark"),
                    help="benchmark output whose manifest.jsonl decontaminates the training set")
    ap.add_argument("--no-decontaminate", action="store_true")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--min-instructions", type=int, default=MIN_INSTRUCTIONS)
    ap.add_argument("--keep-const-init", action="store_true", help="pass --keep-const-init to llvm-extract")
    ap.add_argument("--keep-modules", action="store_true", help="keep the per-file -O0 modules")
    ap.add_argument("--rebuild", action="store_true", help="ignore cached per-file results")
    ap.add_argument("--retry-failed", action="store_true", help="redo files that failed before")
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args(argv)
    args.jobs = max(1, args.jobs)

    if args.step == "module":
        if len(args.module_args) != 2 or args.out is None:
            ap.error("module step: PKG FILE.c --out OUT.ll")
        build_module(args.module_args[0], args.module_args[1], args.out.resolve(), args.src.resolve())
        return 0
    if args.module_args:
        ap.error(f"unexpected arguments: {args.module_args}")

    default = BENCHMARK_PACKAGES if args.benchmark else TRAINING_PACKAGES
    if args.packages is not None:
        pkgs = [p.strip() for p in args.packages.split(",") if p.strip()]
    else:
        pkgs = list(default)
    if args.benchmark and args.csmith:
        ap.error("--csmith is for the training corpus")
    if args.csmith and CSMITH not in pkgs:
        pkgs.append(CSMITH)
    out = (args.out or (Path("data/benchmark") if args.benchmark else Path("data/corpus"))).resolve()
    args.src = args.src.resolve()
    args.benchmark_dir = args.benchmark_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    failures = {}

    if args.step in ("fetch", "all"):
        for pkg in pkgs:
            try:
                if pkg == CSMITH:
                    fetch_csmith(args.src, args.csmith or 200)
                else:
                    fetch_package(args.src, pkg)
            except Exception as exc:
                failures[pkg] = f"fetch: {exc}"
                log(f"[fetch] {pkg}: FAILED: {exc}")
    if args.step in ("build", "all"):
        for pkg in pkgs:
            if pkg in failures:
                continue
            try:
                build_package(pkg, args.src, out, args)
            except Exception as exc:
                failures[pkg] = f"build: {exc}"
                log(f"[build] {pkg}: FAILED: {exc}")
    if args.step in ("dedupe", "all"):
        exclude, source = None, None
        if not args.benchmark and not args.no_decontaminate:
            bm = args.benchmark_dir / "manifest.jsonl"
            if bm.exists():
                exclude, source = load_hashes(bm), str(bm)
                log(f"[dedupe] decontaminating against {len(exclude)} benchmark hashes from {bm}")
            else:
                log(f"[dedupe] WARNING: {bm} missing: build the benchmark first (all --benchmark); "
                    "the training set is NOT decontaminated")
        dedupe(out, default_order=default + [CSMITH], exclude=exclude, exclude_source=source)
    log(f"[{args.step}] done in {time.time() - t0:.1f} s" + (f"; failures: {failures}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
