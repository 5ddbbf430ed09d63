#!/usr/bin/env python3
"""openwrt/apk-mkpkg.py - write an apk-tools v3 package (.apk, OpenWrt 25.12 and snapshots).

    apk-mkpkg.py --files DIR --output FILE [--info KEY:VALUE]... [--script TYPE:FILE]...

A subset of `apk mkpkg` (apk-tools 3), written from the format's description (apk-tools
doc/apk-v3.5 and src/adb.h, src/apk_adb.h) so that a package can be made where apk-tools is
not installed (Debian has no package of it). openwrt/README.md says how the output was checked
against apk-tools 3.0.5 itself.

KEY is one of name, version, description, arch, license, origin, maintainer, url, depends
(space-separated package names). TYPE is one of pre-install, post-install, pre-deinstall,
post-deinstall, pre-upgrade, post-upgrade. Every file and directory under DIR is packaged as
root:root with its mode; mtimes are SOURCE_DATE_EPOCH (default 0), so the output depends only
on the inputs.

Format (all integers little-endian):
  file     = "ADBd" + raw deflate( "ADB." + schema "pckg" + ADB block + DATA block per file )
  block    = u32 (type << 30 | 4 + payload length), payload, zero padding to 8 bytes
  ADB      = struct adb_hdr {u8 compat_ver 0, u8 ver 0, u16 0, u32 root} + values
  value    = u32 tag: 4 bits type, 28 bits immediate or offset into the ADB payload
  blob     = u8/u16/u32 length + bytes (aligned to the length's size)
  object   = u32 slot count (including itself) + u32 per slot, trailing null slots dropped
  DATA     = u32 path index, u32 file index (1-based, in the ADB's paths/files arrays) + bytes
"""

import hashlib
import os
import struct
import sys
import zlib

TYPE_INT = 0x10000000
TYPE_INT_32 = 0x20000000
TYPE_INT_64 = 0x30000000
TYPE_BLOB_8 = 0x80000000
TYPE_BLOB_16 = 0x90000000
TYPE_BLOB_32 = 0xA0000000
TYPE_ARRAY = 0xD0000000
TYPE_OBJECT = 0xE0000000
NULL = 0

FORMAT_MAGIC = 0x2E424441  # "ADB."
SCHEMA_PACKAGE = 0x676B6370  # "pckg"
BLOCK_ADB = 0
BLOCK_DATA = 2

# Slot numbers of the package schema (apk_adb.h).
PI = {  # pkginfo
    "name": 1, "version": 2, "hashes": 3, "description": 4, "arch": 5, "license": 6,
    "origin": 7, "maintainer": 8, "url": 9, "build-time": 11, "installed-size": 12,
    "depends": 15,
}
ACL_MODE, ACL_USER, ACL_GROUP = 1, 2, 3
FI_NAME, FI_ACL, FI_SIZE, FI_MTIME, FI_HASHES = 1, 2, 3, 4, 5
DI_NAME, DI_ACL, DI_FILES = 1, 2, 3
SCRIPTS = {
    "trigger": 1, "pre-install": 2, "post-install": 3, "pre-deinstall": 4,
    "post-deinstall": 5, "pre-upgrade": 6, "post-upgrade": 7,
}
PKG_PKGINFO, PKG_PATHS, PKG_SCRIPTS = 1, 2, 3
DEP_NAME = 1
UID_LEN = 20  # the package's unique id: SHA-1 length, filled from a SHA-256 (as apk does)


class Adb:
    """An append-only ADB value buffer, as adb_w_* in apk-tools builds it."""

    def __init__(self):
        self.buf = bytearray(8)  # struct adb_hdr, root filled in last

    def _raw(self, data, align):
        self.buf += bytes(-len(self.buf) % align)
        off = len(self.buf)
        if off > 0x0FFFFFFF:
            sys.exit("apk-mkpkg.py: ADB block larger than 256 MiB")
        self.buf += data
        return off

    def blob(self, data):
        if isinstance(data, str):
            data = data.encode()
        n = len(data)
        if n == 0:
            return NULL
        if n > 0xFFFF:
            return TYPE_BLOB_32 | self._raw(struct.pack("<I", n) + data, 4)
        if n > 0xFF:
            return TYPE_BLOB_16 | self._raw(struct.pack("<H", n) + data, 2)
        return TYPE_BLOB_8 | self._raw(bytes([n]) + data, 1)

    def int(self, v):
        if v >= 1 << 32:
            return TYPE_INT_64 | self._raw(struct.pack("<Q", v), 4)
        if v >= 0x10000000:
            return TYPE_INT_32 | self._raw(struct.pack("<I", v), 4)
        return TYPE_INT | v

    def obj(self, slots, kind=TYPE_OBJECT):
        """slots: {slot number: value} for an object, a list for an array."""
        if isinstance(slots, dict):
            vals = [slots.get(i, NULL) for i in range(1, max(slots, default=0) + 1)]
        else:
            vals = list(slots)
        while vals and vals[-1] == NULL:
            vals.pop()
        if not vals:
            return NULL
        return kind | self._raw(struct.pack("<%dI" % (len(vals) + 1), len(vals) + 1, *vals), 4)

    def arr(self, items):
        return self.obj(items, TYPE_ARRAY)


def block(kind, payload):
    raw = 4 + len(payload)
    if raw > 0x3FFFFFFF:
        sys.exit("apk-mkpkg.py: block too large")
    return struct.pack("<I", kind << 30 | raw) + payload + bytes(-raw % 8)


def main(argv):
    info, scripts, files_dir, output = {}, {}, None, None
    args = iter(argv)
    for a in args:
        val = next(args, None)
        if val is None:
            sys.exit("apk-mkpkg.py: %s needs a value" % a)
        if a == "--info":
            k, _, v = val.partition(":")
            if k not in PI or k in ("hashes", "installed-size", "build-time"):
                sys.exit("apk-mkpkg.py: unknown --info key %r" % k)
            info[k] = v
        elif a == "--script":
            k, _, path = val.partition(":")
            if k not in SCRIPTS or k == "trigger":
                sys.exit("apk-mkpkg.py: unknown script type %r" % k)
            with open(path, "rb") as f:
                scripts[k] = f.read()
        elif a == "--files":
            files_dir = val
        elif a == "--output":
            output = val
        else:
            sys.exit(__doc__)
    if not files_dir or not output or "name" not in info or "version" not in info:
        sys.exit("apk-mkpkg.py: needs --files, --output, --info name:, --info version:")
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH") or 0)

    db = Adb()

    def acl(mode):
        return db.obj({ACL_MODE: db.int(mode & 0o7777), ACL_USER: db.blob("root"),
                       ACL_GROUP: db.blob("root")})

    # Directories in sorted order (the root first, as ""), files sorted within each.
    dirs = []
    for top, subdirs, names in os.walk(files_dir):
        subdirs.sort()
        rel = os.path.relpath(top, files_dir)
        dirs.append(("" if rel == "." else rel, top, sorted(names)))
    dirs.sort(key=lambda d: d[0])

    paths, payload, installed_size = [], [], 0
    for path_idx, (rel, top, names) in enumerate(dirs, start=1):
        files = []
        for file_idx, name in enumerate(names, start=1):
            full = os.path.join(top, name)
            st = os.lstat(full)
            if not os.path.isfile(full) or os.path.islink(full):
                sys.exit("apk-mkpkg.py: %s: only regular files are supported" % full)
            with open(full, "rb") as f:
                data = f.read()
            installed_size += len(data)
            files.append(db.obj({
                FI_NAME: db.blob(name), FI_ACL: acl(st.st_mode), FI_SIZE: db.int(len(data)),
                FI_MTIME: db.int(mtime), FI_HASHES: db.blob(hashlib.sha256(data).digest()),
            }))
            if data:
                payload.append(block(BLOCK_DATA, struct.pack("<II", path_idx, file_idx) + data))
        mode = os.stat(top).st_mode
        paths.append(db.obj({DI_NAME: db.blob(rel), DI_ACL: acl(mode), DI_FILES: db.arr(files)}))

    pkginfo = {PI[k]: db.blob(v) for k, v in info.items() if k != "depends"}
    deps = info.get("depends", "").split()
    if deps:
        pkginfo[PI["depends"]] = db.arr([db.obj({DEP_NAME: db.blob(d)}) for d in deps])
    pkginfo[PI["installed-size"]] = db.int(max(installed_size, 1))
    # The unique id: zeros while the block is hashed, then the hash's first bytes.
    pkginfo[PI["hashes"]] = db.blob(bytes(UID_LEN))
    uid_off = (pkginfo[PI["hashes"]] & 0x0FFFFFFF) + 1
    root = {PKG_PKGINFO: db.obj(pkginfo), PKG_PATHS: db.arr(paths)}
    if scripts:
        root[PKG_SCRIPTS] = db.obj({SCRIPTS[k]: db.blob(v) for k, v in scripts.items()})
    struct.pack_into("<BBHI", db.buf, 0, 0, 0, 0, db.obj(root))
    db.buf[uid_off:uid_off + UID_LEN] = hashlib.sha256(db.buf).digest()[:UID_LEN]

    stream = struct.pack("<II", FORMAT_MAGIC, SCHEMA_PACKAGE) + block(BLOCK_ADB, bytes(db.buf))
    stream += b"".join(payload)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    tmp = output + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"ADBd" + comp.compress(stream) + comp.flush())
    os.replace(tmp, output)


if __name__ == "__main__":
    main(sys.argv[1:])
