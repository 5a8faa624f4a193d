"""The C half of the differential test: a driver that runs one function on many generated inputs.

`behaviour.py` writes the tables (parameters, buffers, globals, stubs) in front of `DRIVER_SOURCE` and links
the result with each module under test. Everything the driver draws comes from a seeded generator, so two
executables built from the same tables see the same inputs, and every trial runs in a forked child with a
time limit, so a crash or a hang ends one trial, not the run.

Addresses are what differs between two executables, so the driver keeps them out of the comparison: buffers
live in an arena at a fixed address, pointers into the module's own globals and functions are compared as
(symbol, offset), and NaNs are compared as NaN.
"""

# The C library functions the driver itself calls. A module that defines one of these gets its definition
# renamed, so that the driver keeps using the C library's.
DRIVER_CALLS = frozenset(
    """
    main abort atexit clock_gettime vsnprintf vfprintf fwrite fgetc ungetc fgets fread feof ferror strlen close dup2 execv exit fflush fopen fprintf fputc fputs fstat ftruncate fork
    getenv lseek memcmp memcpy memfd_create memset mmap mprotect open personality prctl qsort read setenv
    setitimer setrlimit strtoll strtoull waitpid write _exit
    """.split()
)

DRIVER_SOURCE = r"""
enum { K_I1, K_I8, K_I16, K_I32, K_I64, K_I128, K_FLOAT, K_DOUBLE, K_FP80, K_PTR };
enum { R_VOID, R_I1, R_INT, R_FLOAT, R_DOUBLE, R_FP80, R_PTR };

typedef struct { uint64_t identity, hash, count; } pp_stream_t;

typedef struct {
    int finished; /* 1: the function returned, 2: it called exit() */
    uint64_t hash;
    uint64_t log_hash, log_count;
    int nstreams;
    pp_stream_t streams[8]; /* what was written to FILE*s other than stdout and stderr, by stream */
} pp_shared_t;

static pp_shared_t *pp_shared;
static int pp_detail;
static FILE *pp_report;
static uintptr_t pp_heap_next;
static uint64_t pp_state;
static uintptr_t pp_symbols_lo = UINTPTR_MAX, pp_symbols_hi;

extern void __passpilot_call(void *args, void *ret);

/* -- inputs ------------------------------------------------------------------------------------ */

static uint64_t pp_next(void) {
    uint64_t z = (pp_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t pp_below(uint64_t n) { return n ? pp_next() % n : 0; }

/* Integers: mostly small (sizes, counts, indexes), some at the edges of the type, some built from the
   constants the function compares against or switches on, some anything. */
static uint64_t pp_int(int bits) {
    uint64_t r = pp_below(100);
    if (r < 32) return pp_below(17);
    if (r < 39) return (uint64_t)(-(int64_t)(1 + pp_below(16)));
    if (r < 46) return pp_below(256);
    if (r < 58) {
        uint64_t top = bits >= 64 ? 0x8000000000000000ULL : (1ULL << (bits - 1));
        uint64_t edges[] = {0, 1, ~0ULL, top, top - 1, top + 1, 2 * top - 1};
        return edges[pp_below(7)];
    }
    if (r < 64) return (1ULL << pp_below(bits >= 64 ? 64 : bits)) + pp_below(3) - 1;
    if (r < 78 && pp_nconstants) {
        int64_t c = pp_constants[pp_below(pp_nconstants)];
        if (r < 71) return (uint64_t)c;
        if (r < 74) return (uint64_t)(c + (int64_t)pp_below(3) - 1);
        int64_t d = pp_constants[pp_below(pp_nconstants)];
        return (uint64_t)(c * d + (int64_t)pp_below((uint64_t)(d < 0 ? -d : d) + 1));
    }
    return pp_next();
}

static double pp_real(void) {
    static const double specials[] = {0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1e300, -1e300, 1e-310, 2.2250738585072014e-308,
                                      __builtin_inf(), -__builtin_inf(), __builtin_nan("")};
    uint64_t r = pp_below(100);
    if (r < 30) return (double)((int64_t)pp_below(33) - 16);
    if (r < 40) return specials[pp_below(sizeof specials / sizeof specials[0])];
    if (r < 85) return ((double)(pp_next() >> 11) / 9007199254740992.0) * 2000.0 - 1000.0;
    uint64_t bits = pp_next();
    double d;
    memcpy(&d, &bits, 8);
    return d;
}

/* Buffers get one of several fills: random bytes, small numbers, zeros, pointers into the buffers, or text.
   A global whose type holds pointers (a table of strings) mostly gets pointers; a string constant always
   gets text that ends where the constant ends and holds no `%` (it may be a printf format). */
static void pp_fill(unsigned char *p, size_t n, int fill, size_t used) {
    int pointers = fill == 1;
    if (fill == 2) {
        memset(p, 0, n);
        for (size_t i = 0; i + 1 < used; i++) {
            p[i] = (unsigned char)(0x20 + pp_below(95));
            if (p[i] == '%' || pp_below(64) == 0) p[i] = pp_below(4) ? ' ' : 0;
        }
        return;
    }
    uint64_t style = pointers && pp_below(4) ? 70 : pp_below(100);
    if (style < 35) {
        for (size_t i = 0; i < n; i += 8) {
            uint64_t v = pp_next();
            memcpy(p + i, &v, n - i < 8 ? n - i : 8);
        }
    } else if (style < 55) {
        for (size_t i = 0; i + 4 <= n; i += 4) {
            uint32_t v = (uint32_t)pp_below(16);
            memcpy(p + i, &v, 4);
        }
    } else if (style < 65) {
        memset(p, 0, n);
    } else if (style < 85) { /* words that point into the buffers: linked structures can be walked */
        int ordered = pp_below(2); /* or pointers in increasing order into one buffer: start <= top <= end */
        uint64_t target = pp_below(pp_nregions ? pp_nregions : 1), stride = 8 * (1 + pp_below(8));
        for (size_t i = 0; i + 8 <= n; i += 8) {
            uint64_t v;
            if (pp_nregions && (pointers ? pp_below(10) != 0 : pp_below(2) != 0)) {
                uint64_t region = ordered ? target : pp_below(pp_nregions);
                size_t room = pp_regions[region].size < 1024 ? pp_regions[region].size : 1024;
                uint64_t offset = ordered ? (i / 8) * stride : 8 * pp_below(room / 8);
                v = pp_regions[region].address + (offset < pp_regions[region].size ? offset : 0);
            } else {
                v = pp_below(16);
            }
            memcpy(p + i, &v, 8);
        }
    } else { /* text: printable bytes with early NULs */
        for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(0x20 + pp_below(95));
        for (size_t i = pp_below(64); i < n; i += 1 + pp_below(256)) p[i] = 0;
    }
}

static void pp_value(const pp_leaf *leaf, unsigned char *p) {
    switch (leaf->kind) {
    case K_I1: p[0] = (unsigned char)(pp_next() & 1); break;
    case K_I8: { uint64_t v = pp_int(8); memcpy(p, &v, 1); } break;
    case K_I16: { uint64_t v = pp_int(16); memcpy(p, &v, 2); } break;
    case K_I32: { uint64_t v = pp_int(32); memcpy(p, &v, 4); } break;
    case K_I64: { uint64_t v = pp_int(64); memcpy(p, &v, 8); } break;
    case K_I128: {
        uint64_t lo = pp_int(64), hi = pp_below(4) ? ((int64_t)lo < 0 ? ~0ULL : 0) : pp_next();
        memcpy(p, &lo, 8);
        memcpy(p + 8, &hi, 8);
    } break;
    case K_FLOAT: {
        float f;
        if (pp_below(10) == 0) { uint32_t bits = (uint32_t)pp_next(); memcpy(&f, &bits, 4); }
        else f = (float)pp_real();
        memcpy(p, &f, 4);
    } break;
    case K_DOUBLE: { double d = pp_real(); memcpy(p, &d, 8); } break;
    case K_FP80: { long double x = pp_real(); memcpy(p, &x, 10); } break;
    case K_PTR: {
        uint64_t v = 0, r = pp_below(100);
        if (leaf->region >= 0 && (r >= 3 || leaf->nonnull)) {
            v = pp_regions[leaf->region].address;
            if (r >= 95) v += pp_regions[leaf->region].size / 2;
        }
        memcpy(p, &v, 8);
    } break;
    }
}

static void pp_prepare(uint64_t seed, long trial) {
    pp_state = seed ^ (0xd1b54a32d192ed03ULL * (uint64_t)(trial + 1));
    pp_next();
    for (int i = 0; i < pp_nregions; i++)
        pp_fill((unsigned char *)pp_regions[i].address, pp_regions[i].size, pp_regions[i].fill, pp_regions[i].used);
    memset(pp_args, 0, pp_args_bytes);
    for (int i = 0; i < pp_nleaves; i++) pp_value(&pp_leaves[i], pp_args + pp_leaves[i].offset);
    memset(pp_ret, 0xa5, pp_ret_bytes);
}

/* -- comparing states ----------------------------------------------------------------------------- */

static uint64_t pp_mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 33);
}

static int pp_in_arena(uint64_t v) { return v >= pp_arena_addr && v < pp_arena_addr + pp_arena_bytes; }

/* A pointer into one of the module's globals or functions, as (symbol, offset); other values unchanged. */
static uint64_t pp_symbolize(uint64_t v) {
    if (v && (v == (uintptr_t)stdin || v == (uintptr_t)stdout || v == (uintptr_t)stderr)) /* where ASLR moves the C library */
        return 0xe000000000000000ULL | (v == (uintptr_t)stdin ? 0 : v == (uintptr_t)stdout ? 1 : 2);
    if (v < pp_symbols_lo || v >= pp_symbols_hi) return v;
    int lo = 0, hi = pp_nsymbols - 1, found = -1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (pp_sorted_address[mid] <= v) { found = mid; lo = mid + 1; } else hi = mid - 1;
    }
    if (found < 0) return v;
    size_t size = pp_sorted_size[found] ? pp_sorted_size[found] : 1;
    if (v - pp_sorted_address[found] >= size) return v;
    return 0xf000000000000000ULL | ((uint64_t)pp_sorted_index[found] << 32) | (v - pp_sorted_address[found]);
}

/* What a pointer handed to an external stands for: buffers and symbols exactly, anything else (the stack) as "some pointer". */
static uint64_t pp_pointer_identity(uint64_t v) {
    if (v == 0 || pp_in_arena(v)) return v;
    uint64_t s = pp_symbolize(v);
    return s != v ? s : 1;
}

static uint64_t pp_words(uint64_t h, const unsigned char *p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = pp_mix(h, pp_symbolize(w));
    }
    for (; i < n; i++) h = pp_mix(h, 0x100 | p[i]);
    return pp_mix(h, n);
}

static void pp_canonical_return(void) {
    for (int i = 0; i < pp_nret_leaves; i++) {
        unsigned char *p = pp_ret + pp_ret_leaves[i].offset;
        switch (pp_ret_leaves[i].kind) {
        case K_FLOAT: { float f; memcpy(&f, p, 4); if (f != f) { uint32_t nan = 0x7fc00000; memcpy(p, &nan, 4); } } break;
        case K_DOUBLE: { double d; memcpy(&d, p, 8); if (d != d) { uint64_t nan = 0x7ff8000000000000ULL; memcpy(p, &nan, 8); } } break;
        case K_FP80: { long double x = 0; memcpy(&x, p, 10); if (x != x) { memset(p, 0, 10); p[7] = 0xc0; p[8] = 0xff; p[9] = 0x7f; } } break;
        case K_PTR: { uint64_t v; memcpy(&v, p, 8); v = pp_symbolize(v); memcpy(p, &v, 8); } break;
        }
    }
}

static void pp_hex(const char *label, int index, const unsigned char *p, size_t n) {
    fprintf(pp_report, "%s %d %zu ", label, index, n);
    for (size_t i = 0; i < n; i++) fprintf(pp_report, "%02x", p[i]);
    fputc('\n', pp_report);
}

static size_t pp_capped(size_t n) { return n < PP_DUMP_BYTES ? n : PP_DUMP_BYTES; }

static uint64_t pp_state_hash(void) {
    uint64_t h = 0x243f6a8885a308d3ULL;
    h = pp_words(h, pp_ret, pp_ret_bytes);
    for (int i = 0; i < pp_nregions; i++) h = pp_words(h, (const unsigned char *)pp_regions[i].address, pp_regions[i].size);
    h = pp_words(h, (const unsigned char *)pp_heap_addr, pp_heap_next - pp_heap_addr);
    for (int i = 0; i < pp_nwritable; i++) h = pp_words(h, pp_symbols[i].address, pp_symbols[i].size);
    h = pp_mix(h, pp_shared->log_hash);
    for (int i = 0; i < pp_shared->nstreams; i++)
        h = pp_mix(pp_mix(pp_mix(h, pp_shared->streams[i].identity), pp_shared->streams[i].hash), pp_shared->streams[i].count);
    return pp_mix(h, pp_shared->log_count);
}

static void pp_dump_state(void) {
    pp_hex("ret", 0, pp_ret, pp_ret_bytes);
    for (int i = 0; i < pp_nregions; i++)
        pp_hex("after", i, (const unsigned char *)pp_regions[i].address, pp_capped(pp_regions[i].size));
    pp_hex("heap", 0, (const unsigned char *)pp_heap_addr, pp_capped(pp_heap_next - pp_heap_addr));
    for (int i = 0; i < pp_nwritable; i++) pp_hex("global", i, pp_symbols[i].address, pp_capped(pp_symbols[i].size));
    for (int i = 0; i < pp_shared->nstreams; i++)
        fprintf(pp_report, "stream %d %016llx %llu %016llx\n", i, (unsigned long long)pp_shared->streams[i].identity,
                (unsigned long long)pp_shared->streams[i].count, (unsigned long long)pp_shared->streams[i].hash);
    fflush(pp_report);
}

static void pp_finish(int how) {
    if (pp_shared->finished) return;
    if (how == 1) pp_canonical_return();
    pp_shared->hash = pp_state_hash();
    pp_shared->finished = how;
    if (pp_detail) pp_dump_state();
}

static void pp_on_exit(void) { pp_finish(2); }

/* -- externals ------------------------------------------------------------------------------------ */

/* Every stubbed external: a value derived from its arguments; those that may write memory are logged. */
void __passpilot_stub_call(int id, const unsigned char *args, int nargs, unsigned char *ret, int retkind) {
    const char *kinds = pp_stub_kinds[id];
    uint64_t h = pp_mix(0x51ed270b27ab1a9bULL, (uint64_t)id);
    for (int i = 0; i < nargs && kinds[i]; i++) {
        const unsigned char *s = args + 16 * i;
        uint64_t lo, hi;
        memcpy(&lo, s, 8);
        memcpy(&hi, s + 8, 8);
        switch (kinds[i]) {
        case 'p': lo = pp_pointer_identity(lo); hi = 0; break;
        case 'b': { /* a struct passed by value: the bytes of the caller's copy */
            const unsigned char *copy = (const unsigned char *)(uintptr_t)lo;
            uint64_t bytes = hi & 0xffffffffULL, mask = hi >> 32;
            const char *fields = mask ? pp_masks[mask - 1] : 0;
            lo = 0;
            for (uint64_t k = 0; k < bytes && k < 4096; k++)
                if (!fields || fields[k] == '1') lo = pp_mix(lo, copy[k]);
            hi = 0;
        } break;
        case 'f': { float f; memcpy(&f, s, 4); if (f != f) lo = 0x7fc00000; } break;
        case 'd': { double d; memcpy(&d, s, 8); if (d != d) lo = 0x7ff8000000000000ULL; } break;
        case 'x': { long double x = 0; memcpy(&x, s, 10); hi &= 0xffff; if (x != x) { lo = 1; hi = 0x7fff; } } break;
        }
        h = pp_mix(pp_mix(h, lo), hi);
    }
    if (pp_stub_logged[id]) {
        pp_shared->log_hash = pp_mix(pp_shared->log_hash, h);
        pp_shared->log_count++;
        if (pp_detail) {
            fprintf(pp_report, "call %d %016llx\n", id, (unsigned long long)h);
            fflush(pp_report);
        }
    }
    /* Integer results: half of them 0 (C's "success"), some small, the rest anything. */
    uint64_t value = (h & 7) < 4 ? 0 : (h & 7) < 6 ? (h >> 3) % 16 : h;
    switch (retkind) {
    case R_I1: ret[0] = (unsigned char)(h & 1); break;
    case R_INT: memcpy(ret, &value, 8); memcpy(ret + 8, &h, 8); break;
    case R_FLOAT: { float f = (float)((double)((int64_t)(h % 2001) - 1000) / 8.0); memcpy(ret, &f, 4); } break;
    case R_DOUBLE: { double d = (double)((int64_t)(h % 2001) - 1000) / 8.0; memcpy(ret, &d, 8); } break;
    case R_FP80: { long double x = (long double)((int64_t)(h % 2001) - 1000) / 8.0L; memcpy(ret, &x, 10); } break;
    case R_PTR: {
        uint64_t p = pp_stub_buffer + 16 * ((h >> 8) % (pp_stub_buffer_bytes / 32));
        memcpy(ret, &p, 8);
    } break;
    }
}

/* A stubbed external that does not return ends the trial the way exit() does (its call is logged first). */
void __passpilot_stub_exit(int id) {
    (void)id;
    exit(113);
}

/* The C library's allocation functions, on a bump allocator in the arena: the same addresses in every executable. */
static void *pp_alloc(size_t n, size_t align, int zero) {
    if (align < 16) align = 16;
    uintptr_t start = (pp_heap_next + 16 + align - 1) & ~(uintptr_t)(align - 1);
    if (n > pp_heap_bytes || start + n > pp_heap_addr + pp_heap_bytes) return 0;
    memcpy((void *)(start - 8), &n, 8);
    pp_heap_next = start + n;
    if (zero) memset((void *)start, 0, n);
    return (void *)start;
}

static size_t pp_alloc_size(void *p) {
    size_t n = 0;
    if ((uintptr_t)p >= pp_heap_addr + 16 && (uintptr_t)p < pp_heap_next) memcpy(&n, (char *)p - 8, 8);
    return n;
}

void *__passpilot_alloc_malloc(size_t n) { return pp_alloc(n, 16, 0); }
void *__passpilot_alloc_valloc(size_t n) { return pp_alloc(n, 4096, 0); }
void *__passpilot_alloc_calloc(size_t a, size_t b) { return b && a > pp_heap_bytes / b ? 0 : pp_alloc(a * b, 16, 1); }
void *__passpilot_alloc_aligned_alloc(size_t align, size_t n) { return pp_alloc(n, align, 0); }
void *__passpilot_alloc_memalign(size_t align, size_t n) { return pp_alloc(n, align, 0); }
int __passpilot_alloc_posix_memalign(void **out, size_t align, size_t n) {
    void *p = pp_alloc(n, align, 0);
    if (!p) return 12;
    *out = p;
    return 0;
}
void *__passpilot_alloc_realloc(void *old, size_t n) {
    void *p = pp_alloc(n, 16, 0);
    size_t keep = pp_alloc_size(old);
    if (p && old) memcpy(p, old, keep < n ? keep : n);
    return p;
}
void *__passpilot_alloc_reallocarray(void *old, size_t a, size_t b) {
    return b && a > pp_heap_bytes / b ? 0 : __passpilot_alloc_realloc(old, a * b);
}
void __passpilot_alloc_free(void *p) { (void)p; }
void *__passpilot_alloc_strdup(const char *s) {
    size_t n = 0;
    while (s[n]) n++;
    char *p = pp_alloc(n + 1, 16, 0);
    if (p) memcpy(p, s, n + 1);
    return p;
}
void *__passpilot_alloc_strndup(const char *s, size_t limit) {
    size_t n = 0;
    while (n < limit && s[n]) n++;
    char *p = pp_alloc(n + 1, 16, 0);
    if (p) { memcpy(p, s, n); p[n] = 0; }
    return p;
}
void *__passpilot_alloc__Znwm(size_t n) { void *p = pp_alloc(n, 16, 0); if (!p) abort(); return p; }
void *__passpilot_alloc__Znam(size_t n) { return __passpilot_alloc__Znwm(n); }
void __passpilot_alloc__ZdlPv(void *p) { (void)p; }
void __passpilot_alloc__ZdaPv(void *p) { (void)p; }
void __passpilot_alloc__ZdlPvm(void *p, size_t n) { (void)p; (void)n; }
void __passpilot_alloc__ZdaPvm(void *p, size_t n) { (void)p; (void)n; }

/* The C library's stream functions: for stdin, stdout and stderr the real ones (stdin reads /dev/null, the
   output is captured); any other FILE* (made up from the inputs) is a stream whose bytes are compared. */

static int pp_real_stream(FILE *stream) { return stream == stdin || stream == stdout || stream == stderr; }

static void pp_feed(FILE *stream, const void *data, size_t n) {
    uint64_t identity = pp_pointer_identity((uint64_t)(uintptr_t)stream);
    int i = 0;
    while (i < pp_shared->nstreams && pp_shared->streams[i].identity != identity) i++;
    if (i == pp_shared->nstreams) {
        if (i < 8) pp_shared->nstreams++;
        else i = 7;
        pp_shared->streams[i].identity = identity;
    }
    const unsigned char *bytes = data;
    for (size_t k = 0; k < n && k < (1u << 20); k++) pp_shared->streams[i].hash = pp_mix(pp_shared->streams[i].hash, bytes[k]);
    pp_shared->streams[i].count += n;
}

size_t __passpilot_stream_fwrite(const void *data, size_t size, size_t count, FILE *stream) {
    if (pp_real_stream(stream)) return fwrite(data, size, count, stream);
    if (size && count > ((size_t)1 << 30) / size) count = ((size_t)1 << 30) / size;
    pp_feed(stream, data, size * count);
    return count;
}
size_t __passpilot_stream_fwrite_unlocked(const void *data, size_t size, size_t count, FILE *stream) {
    return __passpilot_stream_fwrite(data, size, count, stream);
}
int __passpilot_stream_fputc(int c, FILE *stream) {
    if (pp_real_stream(stream)) return fputc(c, stream);
    unsigned char byte = (unsigned char)c;
    pp_feed(stream, &byte, 1);
    return byte;
}
int __passpilot_stream_putc(int c, FILE *stream) { return __passpilot_stream_fputc(c, stream); }
int __passpilot_stream_fputc_unlocked(int c, FILE *stream) { return __passpilot_stream_fputc(c, stream); }
int __passpilot_stream_putc_unlocked(int c, FILE *stream) { return __passpilot_stream_fputc(c, stream); }
int __passpilot_stream_fputs(const char *text, FILE *stream) {
    if (pp_real_stream(stream)) return fputs(text, stream);
    pp_feed(stream, text, strlen(text));
    return 1;
}
int __passpilot_stream_fputs_unlocked(const char *text, FILE *stream) { return __passpilot_stream_fputs(text, stream); }
int __passpilot_stream_vfprintf(FILE *stream, const char *format, va_list arguments) {
    if (pp_real_stream(stream)) return vfprintf(stream, format, arguments);
    static char text[1 << 16];
    int n = vsnprintf(text, sizeof text, format, arguments);
    if (n > 0) pp_feed(stream, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
    return n;
}
int __passpilot_stream_fprintf(FILE *stream, const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    int n = __passpilot_stream_vfprintf(stream, format, arguments);
    va_end(arguments);
    return n;
}
int __passpilot_stream___vfprintf_chk(FILE *stream, int flag, const char *format, va_list arguments) {
    (void)flag;
    return __passpilot_stream_vfprintf(stream, format, arguments);
}
int __passpilot_stream___fprintf_chk(FILE *stream, int flag, const char *format, ...) {
    (void)flag;
    va_list arguments;
    va_start(arguments, format);
    int n = __passpilot_stream_vfprintf(stream, format, arguments);
    va_end(arguments);
    return n;
}
int __passpilot_stream_fflush(FILE *stream) { return !stream || pp_real_stream(stream) ? fflush(stream) : 0; }
int __passpilot_stream_fgetc(FILE *stream) { return pp_real_stream(stream) ? fgetc(stream) : EOF; }
int __passpilot_stream_getc(FILE *stream) { return __passpilot_stream_fgetc(stream); }
int __passpilot_stream_ungetc(int c, FILE *stream) { return pp_real_stream(stream) ? ungetc(c, stream) : EOF; }
char *__passpilot_stream_fgets(char *line, int n, FILE *stream) { return pp_real_stream(stream) ? fgets(line, n, stream) : 0; }
size_t __passpilot_stream_fread(void *data, size_t size, size_t count, FILE *stream) {
    return pp_real_stream(stream) ? fread(data, size, count, stream) : 0;
}
int __passpilot_stream_feof(FILE *stream) { return pp_real_stream(stream) ? feof(stream) : 1; }
int __passpilot_stream_ferror(FILE *stream) { return pp_real_stream(stream) ? ferror(stream) : 0; }

/* -- trials --------------------------------------------------------------------------------------- */

/* Uninitialized locals read whatever the stack holds, and the two versions lay their frames out differently:
   zero the stack below this frame so that such reads give the same (zero) in both. */
__attribute__((noinline)) static void pp_scrub_stack(void) {
    unsigned char below[256 * 1024];
    memset(below, 0, sizeof below);
    __asm__ volatile("" : : "r"(below) : "memory");
}

/* The child runs code from the module under test: it keeps only stdin (/dev/null), stdout and stderr (the
   captured output) and, in detail mode, the report, and (on x86-64) may make only the system calls that
   computing, allocating, printing, exiting and raising a signal at itself need. Anything else kills it
   with SIGSYS, which counts as a crash. */
#if defined(__x86_64__) && defined(__linux__)
#define PP_EMIT(code, k, jt, jf) program[count++] = (struct sock_filter){(code), (jt), (jf), (k)}
static void pp_sandbox(void) {
    static const unsigned int allowed[] = {
        __NR_read, __NR_write, __NR_writev, __NR_close, __NR_fstat, __NR_newfstatat, __NR_lseek, __NR_mmap,
        __NR_munmap, __NR_mremap, __NR_mprotect, __NR_brk, __NR_madvise, __NR_rt_sigaction, __NR_rt_sigprocmask,
        __NR_rt_sigreturn, __NR_ioctl, __NR_getpid, __NR_gettid, __NR_exit, __NR_exit_group, __NR_futex,
        __NR_clock_gettime, __NR_clock_nanosleep, __NR_nanosleep, __NR_getrandom, __NR_sched_yield,
#ifdef __NR_statx
        __NR_statx,
#endif
    };
    struct sock_filter program[128];
    unsigned short count = 0;
    PP_EMIT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), 0, 0);
    PP_EMIT(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    PP_EMIT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS, 0, 0);
    PP_EMIT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), 0, 0);
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        PP_EMIT(BPF_JMP | BPF_JEQ | BPF_K, allowed[i], 0, 1);
        PP_EMIT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0);
    }
    PP_EMIT(BPF_JMP | BPF_JEQ | BPF_K, __NR_kill, 1, 0); /* abort() and raise(): only at itself */
    PP_EMIT(BPF_JMP | BPF_JEQ | BPF_K, __NR_tgkill, 0, 3);
    PP_EMIT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]), 0, 0);
    PP_EMIT(BPF_JMP | BPF_JEQ | BPF_K, (unsigned int)getpid(), 0, 1);
    PP_EMIT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0);
    PP_EMIT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS, 0, 0);
    struct sock_fprog filter = {count, program};
    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter, 0, 0);
}
#else
static void pp_sandbox(void) {}
#endif

static void pp_child(int output, long timeout_ms) {
    dup2(output, 1);
    dup2(output, 2);
    int keep = pp_detail ? fileno(pp_report) : -1;
    for (int fd = 3; fd < 1024; fd++)
        if (fd != keep) close(fd);
    struct rlimit file = {1 << 20, 1 << 20}, core = {0, 0}, memory = {4UL << 30, 4UL << 30};
    struct rlimit cpu = {(rlim_t)(timeout_ms / 1000 + 2), (rlim_t)(timeout_ms / 1000 + 3)};
    setrlimit(RLIMIT_FSIZE, &file);
    setrlimit(RLIMIT_CORE, &core);
    setrlimit(RLIMIT_AS, &memory);
    setrlimit(RLIMIT_CPU, &cpu);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    struct itimerval timer = {{0, 0}, {timeout_ms / 1000, (timeout_ms % 1000) * 1000}};
    setitimer(ITIMER_REAL, &timer, 0);
    atexit(pp_on_exit);
    pp_sandbox();
    pp_scrub_stack();
    __passpilot_call(pp_args, pp_ret);
    fflush(stdout);
    fflush(stderr);
    pp_finish(1);
    _exit(0);
}

typedef struct { char status; int code; uint64_t hash; } pp_outcome;

static pp_outcome pp_trial(uint64_t seed, long trial, long timeout_ms, int output) {
    pp_outcome outcome = {'R', 0, 0};
    pp_prepare(seed, trial);
    memset(pp_shared, 0, sizeof *pp_shared);
    if (pp_detail) {
        pp_hex("args", 0, pp_args, pp_args_bytes);
        for (int i = 0; i < pp_nregions; i++)
            pp_hex("before", i, (const unsigned char *)pp_regions[i].address, pp_capped(pp_regions[i].size));
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) { outcome.status = 'X'; return outcome; }
    if (pid == 0) pp_child(output, timeout_ms);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {}
    uint64_t h = 0x85ebca6bULL;
    struct stat info;
    size_t written = fstat(output, &info) == 0 ? (size_t)info.st_size : 0;
    lseek(output, 0, SEEK_SET);
    static unsigned char captured[1 << 16];
    size_t kept = 0;
    for (;;) {
        ssize_t got = read(output, captured, sizeof captured);
        if (got <= 0) break;
        if (pp_detail && kept == 0) pp_hex("out", 0, captured, (size_t)got < PP_DUMP_BYTES ? (size_t)got : PP_DUMP_BYTES);
        for (ssize_t i = 0; i < got; i++) h = pp_mix(h, captured[i]);
        kept += (size_t)got;
    }
    h = pp_mix(h, written);
    ftruncate(output, 0);
    lseek(output, 0, SEEK_SET);
    if (WIFSIGNALED(status)) {
        int signal_number = WTERMSIG(status);
        outcome.status = signal_number == SIGALRM || signal_number == SIGXCPU ? 'H' : 'S';
        outcome.code = signal_number;
        return outcome;
    }
    outcome.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (pp_shared->finished != 1 || outcome.code != 0) outcome.status = 'E';
    outcome.hash = pp_mix(pp_mix(pp_shared->hash, h), (uint64_t)outcome.code);
    if (pp_detail) fprintf(pp_report, "calls %llu\n", (unsigned long long)pp_shared->log_count);
    return outcome;
}

static int pp_compare_address(const void *a, const void *b) {
    uintptr_t x = pp_symbols[*(const int *)a].address_value, y = pp_symbols[*(const int *)b].address_value;
    return x < y ? -1 : x > y;
}

static long pp_now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1000L + now.tv_nsec / 1000000L;
}

int main(int argc, char **argv) {
    int persona = personality(0xffffffff);
    if (persona != -1 && !(persona & ADDR_NO_RANDOMIZE) && !getenv("PASSPILOT_DRIVER_REEXEC")) {
        setenv("PASSPILOT_DRIVER_REEXEC", "1", 1);
        if (personality((unsigned long)persona | ADDR_NO_RANDOMIZE) != -1) execv("/proc/self/exe", argv);
    }
    if (argc != 7) return 64;
    pp_report = fopen(argv[2], "a");
    if (!pp_report) return 65;
    pp_detail = argv[1][0] == 'd';
    uint64_t seed = strtoull(argv[3], 0, 10);
    long count = strtoll(argv[4], 0, 10), timeout_ms = strtoll(argv[5], 0, 10), budget_ms = strtoll(argv[6], 0, 10);

    void *arena = mmap((void *)pp_arena_addr, pp_arena_bytes, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
    if (arena != (void *)pp_arena_addr) {
        fprintf(pp_report, "error could not map the input arena at %#lx\n", (unsigned long)pp_arena_addr);
        return 66;
    }
    for (int i = 0; i < pp_nregions; i++) mprotect((void *)pp_regions[i].address, pp_regions[i].size, PROT_READ | PROT_WRITE);
    mprotect((void *)pp_heap_addr, pp_heap_bytes, PROT_READ | PROT_WRITE);
    pp_heap_next = pp_heap_addr;
    pp_shared = mmap(0, sizeof *pp_shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int output = memfd_create("passpilot-output", 0);
    int devnull = open("/dev/null", O_RDONLY);
    if (pp_shared == MAP_FAILED || output < 0 || devnull < 0) {
        fprintf(pp_report, "error could not set up the trials\n");
        return 67;
    }
    dup2(devnull, 0);

    int *order = pp_order;
    for (int i = 0; i < pp_nexternals; i++) /* the externals come last, with their addresses as linked */
        pp_symbols[pp_nsymbols - pp_nexternals + i].address = pp_external_addresses[i];
    for (int i = 0; i < pp_nsymbols; i++) {
        pp_symbols[i].address_value = (uintptr_t)pp_symbols[i].address;
        order[i] = i;
    }
    qsort(order, pp_nsymbols, sizeof order[0], pp_compare_address);
    for (int i = 0; i < pp_nsymbols; i++) {
        const pp_symbol *s = &pp_symbols[order[i]];
        pp_sorted_address[i] = s->address_value;
        pp_sorted_size[i] = s->size;
        pp_sorted_index[i] = order[i];
        if (s->address_value < pp_symbols_lo) pp_symbols_lo = s->address_value;
        if (s->address_value + (s->size ? s->size : 1) > pp_symbols_hi) pp_symbols_hi = s->address_value + (s->size ? s->size : 1);
    }

    long started = pp_now_ms(), first = pp_detail ? count : 0, last = pp_detail ? count + 1 : count, done = 0;
    for (long trial = first; trial < last; trial++) {
        if (!pp_detail && pp_now_ms() - started > budget_ms) break;
        pp_outcome outcome = pp_trial(seed, trial, timeout_ms, output);
        fprintf(pp_report, "T %ld %c %d %016llx\n", trial, outcome.status, outcome.code, (unsigned long long)outcome.hash);
        fflush(pp_report);
        done++;
    }
    fprintf(pp_report, "done %ld\n", done);
    fclose(pp_report);
    return 0;
}
"""

DRIVER_PRELUDE = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/syscall.h>
#if defined(__x86_64__) && defined(__linux__)
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct { int kind; int offset; int region; int nonnull; } pp_leaf;
typedef struct { uintptr_t address; size_t size; int fill; size_t used; } pp_region;
typedef struct { unsigned char *address; size_t size; uintptr_t address_value; } pp_symbol;
"""

# What the tables (generated per check) provide to the driver (compiled once per checker).
DRIVER_TABLES = r"""
#define PP_DUMP_BYTES 65536
extern const int pp_args_bytes, pp_ret_bytes, pp_nleaves, pp_nret_leaves, pp_nregions, pp_nsymbols, pp_nwritable;
extern const int pp_nconstants, pp_nexternals;
extern void *const pp_external_addresses[];
extern const int64_t pp_constants[];
extern const uintptr_t pp_arena_addr, pp_arena_bytes, pp_heap_addr, pp_heap_bytes, pp_stub_buffer, pp_stub_buffer_bytes;
extern unsigned char pp_args[], pp_ret[];
extern const pp_leaf pp_leaves[], pp_ret_leaves[];
extern const pp_region pp_regions[];
extern pp_symbol pp_symbols[];
extern const char *const pp_stub_kinds[], *const pp_masks[];
extern const unsigned char pp_stub_logged[];
extern uintptr_t pp_sorted_address[];
extern size_t pp_sorted_size[];
extern int pp_sorted_index[], pp_order[];
"""
