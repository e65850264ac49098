#!/usr/bin/env python3
"""Writes Sluice's OCI image archive (one layer) from Debian's extracted packages, the
release binary and sluice-init, reproducibly. Called by scripts/image.

The layer keeps from Debian only what sluice and sluice-init run on (see KEEP_PROGRAMS and
DROP), adds /usr/local/bin/sluice, /usr/local/bin/sluice-init (with its iptables
templates), the symlinks Debian's maintainer scripts would have made, and /etc/passwd and
/etc/group with the proxy user 1337. Every entry gets the same timestamp, owner root
(numeric), and the entries are sorted; gzip gets no name and no date. So the archive's
bytes depend only on the inputs.

Prints KEY=VALUE lines (sizes, digests) for scripts/image.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import time

# Programs that stay (everything else in bin/sbin directories goes): sluice-init's needs.
KEEP_PROGRAMS = {
    "bash", "cat", "cut", "dirname", "env", "grep", "head", "readlink", "sed", "sleep", "tr",
    "python3.11",
}
BIN_DIRS = ("bin/", "sbin/", "usr/bin/", "usr/sbin/")
# Prefixes dropped whole: documentation, translations, charset converters, package state,
# Python's TLS and hash modules (sluice-init uses neither) and the libraries only they need.
DROP = (
    "usr/share/man/", "usr/share/info/", "usr/share/locale/", "usr/share/lintian/",
    "usr/share/bash-completion/", "usr/share/zsh/", "usr/share/bug/", "usr/share/menu/",
    "usr/share/pixmaps/", "usr/share/applications/", "usr/share/debconf/", "usr/share/perl5/",
    "usr/lib/x86_64-linux-gnu/gconv/", "usr/lib/x86_64-linux-gnu/perl", "usr/share/perl/",
    "var/lib/dpkg/", "var/lib/apt/", "var/cache/", "var/log/", "etc/apt/", "etc/dpkg/",
    "usr/lib/python3.11/lib-dynload/_ssl", "usr/lib/python3.11/lib-dynload/_hashlib",
    "usr/lib/x86_64-linux-gnu/libssl.so", "usr/lib/x86_64-linux-gnu/libcrypto.so",
    "usr/lib/x86_64-linux-gnu/engines-3/", "usr/lib/x86_64-linux-gnu/ossl-modules/",
    "usr/lib/python3.11/pydoc_data/", "usr/lib/python3.11/ensurepip/",
    "usr/lib/x86_64-linux-gnu/xtables/libebt_", "usr/lib/x86_64-linux-gnu/xtables/libarpt_",
)

PASSWD = "root:x:0:0:root:/root:/bin/bash\nsluice:x:1337:1337:Sluice proxy:/nonexistent:/nonexistent\nnobody:x:65534:65534:nobody:/nonexistent:/nonexistent\n"
GROUP = "root:x:0:\nsluice:x:1337:\nnogroup:x:65534:\n"
NSSWITCH = "passwd: files\ngroup: files\nhosts: files dns\n"


def keep(name, member):
    if name in ("", "."):
        return False
    if any(name.startswith(prefix) for prefix in DROP):
        return False
    if name.startswith("usr/share/doc/"):
        # The licences stay; the rest of the documentation goes.
        return member.isdir() or name.endswith("/copyright")
    for directory in BIN_DIRS:
        if name.startswith(directory) and not member.isdir():
            base = name[len(directory):]
            if "/" in base:
                return True
            if base.endswith(("-apply", "-translate", "-xml")) or base == "xtables-monitor":
                return False  # shell scripts and converters, not the rules' tools
            return base in KEEP_PROGRAMS or base.startswith(("xtables-", "iptables", "ip6tables"))
    return True


def normalized(member, epoch):
    member.mtime = epoch
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    member.pax_headers = {}
    return member


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--debian", required=True)
    parser.add_argument("--sluice", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--epoch", type=int, required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    epoch = args.epoch

    entries = {}  # name -> (TarInfo, bytes or None)
    with tarfile.open(args.debian) as debian:
        for member in debian:
            name = member.name[2:] if member.name.startswith("./") else member.name
            name = name.rstrip("/").lstrip("/")
            if not keep(name + ("/" if member.isdir() else ""), member):
                continue
            member.name = name
            data = debian.extractfile(member).read() if member.isfile() else None
            entries[name] = (member, data)

    def add_dir(name, mode=0o755):
        info = tarfile.TarInfo(name)
        info.type, info.mode = tarfile.DIRTYPE, mode
        entries[name] = (info, None)

    def add_file(name, data, mode=0o644):
        parts = name.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) not in entries:
                add_dir("/".join(parts[:i]))
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), mode
        entries[name] = (info, data)

    def add_link(name, target):
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
        entries[name] = (info, None)

    with open(args.sluice, "rb") as f:
        add_file("usr/local/bin/sluice", f.read(), 0o755)
    with open(os.path.join(args.root, "scripts/sluice-init"), "rb") as f:
        add_file("usr/local/lib/sluice/scripts/sluice-init", f.read(), 0o755)
    for template in sorted(os.listdir(os.path.join(args.root, "iptables"))):
        with open(os.path.join(args.root, "iptables", template), "rb") as f:
            add_file(f"usr/local/lib/sluice/iptables/{template}", f.read())
    add_link("usr/local/bin/sluice-init", "../lib/sluice/scripts/sluice-init")
    add_link("usr/bin/python3", "python3.11")
    # Debian's alternatives for iptables, as its postinst sets them: the nft backend.
    sbin = "usr/sbin" if "usr/sbin/xtables-nft-multi" in entries else "sbin"
    for tool in ("iptables", "iptables-restore", "iptables-save", "ip6tables", "ip6tables-restore", "ip6tables-save"):
        add_link(f"{sbin}/{tool}", "xtables-nft-multi")
    add_file("etc/passwd", PASSWD.encode())
    add_file("etc/group", GROUP.encode())
    add_file("etc/nsswitch.conf", NSSWITCH.encode())
    add_file("usr/local/share/sluice/VERSION", (args.version + "\n").encode())
    for directory, mode in (("tmp", 0o1777), ("run", 0o755), ("etc/sluice", 0o755)):
        add_dir(directory, mode)

    # The layer: sorted, one timestamp, numeric root ownership.
    layer = io.BytesIO()
    unpacked = 0
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(entries):
            info, data = entries[name]
            info = normalized(info, epoch)
            if data is not None:
                unpacked += len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    layer_bytes = layer.getvalue()
    compressed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=9) as gz:
        gz.write(layer_bytes)
    blob = compressed.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    layer_digest = "sha256:" + hashlib.sha256(blob).hexdigest()

    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    config = {
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": "1337:1337",
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Entrypoint": ["/usr/local/bin/sluice"],
            "Cmd": ["--help"],
            "WorkingDir": "/",
            "Labels": {
                "org.opencontainers.image.title": "sluice",
                "org.opencontainers.image.description": "Egress-control sidecar, init container and egress gateway",
                "org.opencontainers.image.version": args.version,
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "scripts/image (mmdebstrap + scripts/oci.py)"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": len(config_bytes)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": len(blob)}],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    manifest_digest = "sha256:" + hashlib.sha256(manifest_bytes).hexdigest()
    index = {
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": len(manifest_bytes),
            "annotations": {"org.opencontainers.image.ref.name": args.version},
        }],
    }
    files = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index, sort_keys=True, separators=(",", ":")).encode(),
        "blobs/sha256/" + config_digest[7:]: config_bytes,
        "blobs/sha256/" + manifest_digest[7:]: manifest_bytes,
        "blobs/sha256/" + layer_digest[7:]: blob,
    }
    tmp = args.output + ".tmp"
    with tarfile.open(tmp, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for directory in ("blobs", "blobs/sha256"):
            info = normalized(tarfile.TarInfo(directory), epoch)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name in sorted(files):
            info = normalized(tarfile.TarInfo(name), epoch)
            info.size, info.mode = len(files[name]), 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    os.replace(tmp, args.output)
    with open(args.output, "rb") as f:
        archive_sha = hashlib.sha256(f.read()).hexdigest()

    print(f"COMPRESSED_BYTES={len(blob) + len(config_bytes) + len(manifest_bytes)}")
    print(f"UNPACKED_BYTES={unpacked}")
    print(f"LAYER_TAR_BYTES={len(layer_bytes)}")
    print(f"FILE_COUNT={sum(1 for info, data in entries.values() if data is not None)}")
    print(f"IMAGE_ID={config_digest[7:]}")
    print(f"MANIFEST_DIGEST={manifest_digest}")
    print(f"ARCHIVE_SHA256={archive_sha}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
