#!/usr/bin/env python3
"""Writes the uncompressed tar of fuzz/regressions/bundle-1 (kind x) or bundle-2 (kind L)
to stdout; zstd compresses it to the regression file:

    python3 fuzz/regressions/make.py x $((1<<30)) | zstd -3 -q -c > fuzz/regressions/bundle-1
    python3 fuzz/regressions/make.py L $((1<<30)) | zstd -3 -q -c > fuzz/regressions/bundle-2

An unsigned manifest.toml that declares a huge payload, then a PAX extended header (x) or a
GNU long name (L) of SIZE zero bytes: the tar crate reads that record whole into memory,
before the signature entry is reached.
"""
import sys


def header(name, size, kind):
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b'0000644\0'
    h[108:116] = b'0000000\0'
    h[116:124] = b'0000000\0'
    h[124:136] = (b'%011o' % size) + b'\0'
    h[136:148] = b'00000000000\0'
    h[148:156] = b' ' * 8
    h[156:157] = kind
    h[257:263] = b'ustar\0'
    h[263:265] = b'00'
    h[148:156] = b'%06o\0 ' % sum(h)
    return bytes(h)


def main():
    kind, size = sys.argv[1].encode(), int(sys.argv[2])
    name = {b'x': b'PaxHeaders/x', b'L': b'././@LongLink'}[kind]
    manifest = (b'[bundle]\nname = "a"\nversion = "1.0.0"\n\n[[file]]\npath = "payload/x"\n'
                b'size = 9223372036854775807\nsha256 = "' + b'0' * 64 + b'"\n')
    out = sys.stdout.buffer
    out.write(header(b'manifest.toml', len(manifest), b'0'))
    out.write(manifest + b'\0' * (-len(manifest) % 512))
    out.write(header(name, size, kind))
    chunk = b'\0' * (1 << 20)
    while size > 0:
        n = min(size, len(chunk))
        out.write(chunk[:n])
        size -= n


main()
