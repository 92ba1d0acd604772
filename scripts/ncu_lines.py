#!/usr/bin/env python3
"""Where a kernel's ncu samples and instructions go, by source line or by function.

    scripts/ncu_lines.py SASS_CSV CACHE_ENTRY SOURCE.cu [--by line|function] [--top N]
                         [--sort samples|instructions]

SASS_CSV: `ncu -i REPORT --page source --csv --print-source sass` of one profiled kernel (take
the report with `ncu --set full --import-source yes -k regex:NAME --launch-skip 5
--launch-count 1 -o REPORT .devbin/bin/dsa bench ...`). CACHE_ENTRY: the JIT cache's `.bin`
entry of that kernel (from the run's DSA_CACHE_DIR; the CUBIN starts at its ELF magic).
SOURCE.cu: the kernel source the cache entry was compiled from (our kernels carry
`-lineinfo`, and their line numbers are the `.cu` file's). Needs `nvdisasm`: on PATH, or set
NVDISASM (the PyPI wheel `nvidia-cuda-nvdisasm` has one).
"""
import argparse, collections, csv, os, re, shutil, subprocess, sys, tempfile


def line_map(cubin_bytes):
    """Instruction offset -> (innermost line, line it was inlined at or None)."""
    tool = os.environ.get("NVDISASM") or shutil.which("nvdisasm")
    if not tool:
        sys.exit("no nvdisasm: set NVDISASM")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin_bytes)
        f.flush()
        dis = subprocess.run([tool, "-g", "-c", f.name], capture_output=True, text=True, check=True).stdout
    where, cur = {}, (0, None)
    for l in dis.splitlines():
        if "//## File" in l:
            lines = [int(x) for x in re.findall(r"line (\d+)", l)]
            cur = (lines[0], lines[1] if len(lines) > 1 else None)
            continue
        m = re.match(r"\s*/\*([0-9a-f]{4,})\*/", l)
        if m:
            where[int(m.group(1), 16)] = cur
    return where


def functions(source_lines):
    """(first line, name) of each function-like definition, in order."""
    out = []
    for i, l in enumerate(source_lines, 1):
        l = re.sub(r"__launch_bounds__\([^)]*\)", "", l)
        m = re.match(r"\s*(?:template <.*>\s*)?(?:__device__|extern \"C\")[^(]*?\b(\w+)\s*\(", l)
        if m:
            out.append((i, m.group(1)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sass_csv")
    ap.add_argument("cache_entry")
    ap.add_argument("source")
    ap.add_argument("--by", choices=["line", "function"], default="line")
    ap.add_argument("--sort", choices=["samples", "instructions"], default="samples")
    ap.add_argument("--top", type=int, default=30)
    a = ap.parse_args()
    blob = open(a.cache_entry, "rb").read()
    where = line_map(blob[blob.find(b"\x7fELF"):])
    src = open(a.source).read().splitlines()
    fns = functions(src)

    def fn_of(line):
        name = "?"
        for first, n in fns:
            if first > line:
                break
            name = n
        return name

    rows = list(csv.reader(open(a.sass_csv)))
    head = next(i for i, r in enumerate(rows) if r and r[0] == "Address")
    col = {h: i for i, h in enumerate(rows[head])}
    stalls = [h for h in rows[head] if h.startswith("stall_") and "Not Issued" not in h]
    agg = collections.defaultdict(collections.Counter)
    total = collections.Counter()
    base = None
    for r in rows[head + 1:]:
        if len(r) < len(col) or not r[0].startswith("0x"):
            continue
        addr = int(r[0], 16)
        base = addr if base is None else base
        inner, outer = where.get(addr - base, (0, None))
        key = inner if a.by == "line" else fn_of(inner) + (f" < {fn_of(outer)}" if outer else "")
        num = lambda h: float(r[col[h]] or 0)
        c = agg[key]
        c["samples"] += num("Warp Stall Sampling (All Samples)")
        c["instructions"] += num("Instructions Executed")
        for s in stalls:
            c[s] += num(s)
        total["samples"] += num("Warp Stall Sampling (All Samples)")
        total["instructions"] += num("Instructions Executed")
    print(f"{total['samples']:.0f} samples, {total['instructions']:.0f} warp instructions")
    for key, c in sorted(agg.items(), key=lambda kv: -kv[1][a.sort])[: a.top]:
        top = sorted(((c[s], s[6:]) for s in stalls), reverse=True)[:3]
        why = " ".join(f"{s}:{100 * v / max(c['samples'], 1):.0f}%" for v, s in top if v)
        text = src[key - 1].strip()[:60] if a.by == "line" and 0 < key <= len(src) else ""
        print(f"{100 * c['samples'] / max(total['samples'], 1):5.1f}% samples "
              f"{100 * c['instructions'] / max(total['instructions'], 1):5.1f}% instr  {key}  {why}  {text}")


if __name__ == "__main__":
    main()
