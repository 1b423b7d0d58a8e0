#!/usr/bin/env python3
"""What the codec alternatives issue #19 lists would save on the recorded training run, per series, against what
Tally stores (docs/benchmarks.md, "Codec alternatives measured"). Bounds, not implementations: each figure is the
order-0 entropy a coder of that kind could reach on 32,768-value blocks, so a real one ends above it.

- dictionary: index entropy + the dictionary itself (4 or 8 bytes per distinct value), per block;
- decimal (ALP-style): the smallest e ≤ 18 with every value of the block equal to round(v · 10^e) / 10^e in its
  width, then the integers' frame-of-reference planes' entropy; "-" when no e fits the block;
- plane grouping: the low two bytes of the zigzag delta coded as one 16-bit symbol instead of two planes (the
  noisy low bytes of a float32), the saving in bits per value, over the whole series (a 32,768-value block cannot
  estimate a 65,536-symbol alphabet: its empirical entropy is capped at 15 bits) with the Miller–Madow correction,
  and before the cost of a 16-bit coding table in each block.

Usage: .venv-interop/bin/python scripts/codec-alternatives.py --curves /tmp/curves-1m.bin
"""
import argparse

import numpy as np

from benchutil import read_curves

BLOCK = 32_768


def entropy_bits(symbols, corrected=False):
    """Total order-0 entropy of an array of symbols, in bits (Miller–Madow corrected when `corrected`)."""
    _, counts = np.unique(symbols, return_counts=True)
    p = counts / counts.sum()
    bits = float(-(counts * np.log2(p)).sum())
    return bits + ((len(counts) - 1) / (2 * np.log(2)) if corrected else 0)


def dictionary_bytes(block, width):
    distinct = np.unique(block.view(np.uint64))
    return entropy_bits(block.view(np.uint64)) / 8 + width * len(distinct)


def decimal_bytes(block, width):
    for e in range(0, 19):
        scale = 10.0 ** e
        ints = np.round(block * scale)
        back = ints / scale
        if width == 4:
            back = back.astype(np.float32).astype(np.float64)
        if np.all(np.isfinite(block)) and np.array_equal(back.view(np.uint64), block.view(np.uint64)) and np.all(np.abs(ints) < 2**53):
            k = (ints - ints.min()).astype(np.uint64)
            planes = max(1, (int(k.max()).bit_length() + 7) // 8)
            return sum(entropy_bits(((k >> np.uint64(8 * j)) & np.uint64(255)).astype(np.uint8)) / 8 + 16 for j in range(planes)), e
    return None, None


def grouping_gain_bits(block, width):
    """Bits per value saved by coding the low 16 bits of the zigzag delta as one symbol instead of two bytes."""
    block = np.ascontiguousarray(block)
    words = block.astype(np.float32).view(np.uint32).astype(np.int64) if width == 4 else block.view(np.int64)
    d = np.diff(words, prepend=0)
    z = ((d << 1) ^ (d >> 63)).astype(np.uint64)
    lo, hi = (z & np.uint64(255)).astype(np.uint16), ((z >> np.uint64(8)) & np.uint64(255)).astype(np.uint16)
    separate = entropy_bits(lo, True) + entropy_bits(hi, True)
    joint = entropy_bits(lo | (hi << np.uint16(8)), True)
    return (separate - joint) / len(block)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--curves", required=True)
    args = ap.parse_args()
    print(f"{'series':14} {'points':>8} {'distinct/blk':>12} {'dictionary B/pt':>15} {'decimal B/pt (e)':>17} {'grouping bits/pt':>16}")
    for name, width, _steps, _stamps, values in read_curves(args.curves):
        n = len(values)
        dict_total, dec_total, dec_ok, distinct = 0.0, 0.0, True, []
        exps = set()
        for i in range(0, n, BLOCK):
            block = np.ascontiguousarray(values[i:i + BLOCK])
            distinct.append(len(np.unique(block)))
            dict_total += dictionary_bytes(block, width)
            d, e = decimal_bytes(block, width)
            if d is None:
                dec_ok = False
            else:
                dec_total += d
                exps.add(e)
        gain = grouping_gain_bits(values, width)
        dec = f"{dec_total / n:.3f} ({','.join(map(str, sorted(exps)))})" if dec_ok else "-"
        print(f"{name:14} {n:8d} {int(np.median(distinct)):12d} {dict_total / n:15.3f} {dec:>17} {gain:16.3f}")


if __name__ == "__main__":
    main()
