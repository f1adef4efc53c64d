"""What encryption costs an export: CSV + zstd of N synthetic candles (default 5,000,000),
without encryption and with each scheme, in one run.

Each measurement runs in a fresh subprocess (its peak RSS is its own); the variants are
interleaved and repeated, and the fastest run of each is kept, since the machine is shared.
Every encrypted file is decrypted once afterwards (streaming) and its plaintext checksum
compared with the manifest's.

    python benchmarks/encryption_overhead.py                 # 5,000,000 rows, 2 rounds
    python benchmarks/encryption_overhead.py --rows 1000000 --rounds 3
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from export_speed import _peak_rss_mb, build_store  # noqa: E402 - shared with export_speed

from marketexport.config import Settings

# The product's own defaults (batch size, DuckDB memory limit) with every core for the
# export, as DuckDB's COPY has: what `MARKETEXPORT_CPU_FRACTION=1 marketexport export` runs.
DEFAULTS = Settings(cpu_fraction=1.0)

VARIANTS = ["none", "aes256", "aes256-passphrase", "rsa2048", "fernet", "age"]
PASSPHRASE_VAR = "BENCH_EXPORT_PASSPHRASE"


def _spec(variant: str, keys: Path) -> object:
    from marketexport.export.encryption import EncryptionSpec

    if variant == "none":
        return None
    if variant == "aes256":
        return EncryptionSpec("aes256", key="bench-aes")
    if variant == "aes256-passphrase":
        return EncryptionSpec("aes256", passphrase_env=PASSPHRASE_VAR)
    if variant == "rsa2048":
        return EncryptionSpec("rsa2048", recipients=(str(keys / "bench-rsa.rsa.pub.pem"),))
    if variant == "fernet":
        return EncryptionSpec("fernet", key="bench-fernet")
    return EncryptionSpec("age", key="bench-age")


def child(store: Path, out: Path, keys: Path, variant: str) -> dict[str, object]:
    from marketexport.export.encryption import KeyDirectory, KeyRing
    from marketexport.export.pipeline import run_export
    from marketexport.request import build_request
    from marketexport.store.duckdb import DuckDBStore

    ring = KeyRing(KeyDirectory(keys), {PASSPHRASE_VAR: "benchmark passphrase"})
    opened = DuckDBStore(
        store,
        read_only=True,
        threads=DEFAULTS.cpu_threads,
        memory_limit_mb=DEFAULTS.store_memory_mb,
    )
    request = build_request(
        dataset="ohlcv", format="csv", compression="zstd", encryption=_spec(variant, keys)
    )
    started = time.perf_counter()
    result = run_export(
        request,
        opened,
        output_dir=out,
        threads=DEFAULTS.cpu_threads,
        batch_rows=DEFAULTS.batch_rows,
        keys=ring,
    )
    elapsed = time.perf_counter() - started
    opened.close()
    return {
        "variant": variant,
        "seconds": elapsed,
        "rows": result.manifest.rows,
        "file_bytes": result.manifest.file_bytes,
        "payload_sha256": result.manifest.payload_sha256,
        "path": str(result.path),
        "peak_rss_mb": _peak_rss_mb(),  # VmHWM: ru_maxrss would carry the parent's across exec
    }


def check_plaintext(path: Path, keys: Path, variant: str, payload_sha256: str) -> bool:
    """Decrypt and decompress as a stream; compare with the manifest's plaintext checksum."""
    from marketexport.export.compression import iter_decompressed
    from marketexport.export.encryption import DecryptionKeys, Decryptor, KeyDirectory, KeyRing
    from marketexport.export.encryption.decrypt import iter_decrypted

    ring = KeyRing(KeyDirectory(keys), {PASSPHRASE_VAR: "benchmark passphrase"})
    offered = {
        "aes256": DecryptionKeys(keys=("bench-aes",)),
        "aes256-passphrase": DecryptionKeys(passphrase_env=PASSPHRASE_VAR),
        "rsa2048": DecryptionKeys(keys=("bench-rsa",)),
        "fernet": DecryptionKeys(keys=("bench-fernet",)),
        "age": DecryptionKeys(keys=("bench-age",)),
    }[variant]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        raw = iter(lambda: handle.read(1 << 20), b"")
        for chunk in iter_decompressed(iter_decrypted(raw, Decryptor(offered, ring)), "zstd"):
            digest.update(chunk)
    return digest.hexdigest() == payload_sha256


def stage_seconds(source: Path, keys: Path, variant: str) -> float:
    """The encryption stage alone over an existing compressed file, in 1 MiB writes: the
    part of an export's time that encryption adds, with the store and writer left out."""
    from marketexport.export.encryption import KeyDirectory, KeyRing, open_encryptor

    ring = KeyRing(KeyDirectory(keys), {PASSPHRASE_VAR: "benchmark passphrase"})
    spec = _spec(variant, keys)
    started = time.perf_counter()
    stage = open_encryptor(spec, ring, {"format": "csv", "compression": "zstd"})  # type: ignore[arg-type]
    with source.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            stage.write(chunk)
    stage.flush()
    return time.perf_counter() - started


def run_child(args: list[str]) -> dict[str, object]:
    output = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def make_keys(keys: Path) -> None:
    from marketexport.export.encryption import KeyDirectory

    directory = KeyDirectory(keys)
    for kind, name in (("aes256", "bench-aes"), ("fernet", "bench-fernet"), ("age", "bench-age")):
        directory.generate(kind, name)
    directory.generate("rsa", "bench-rsa", bits=2048)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None, help="scratch directory")
    parser.add_argument("--child", nargs=4, metavar=("STORE", "OUT", "KEYS", "VARIANT"))
    args = parser.parse_args()
    if args.child:
        store, out, keys, variant = args.child
        print(json.dumps(child(Path(store), Path(out), Path(keys), variant)))
        return

    work = args.work or Path(tempfile.mkdtemp(prefix="encbench-"))
    store = work / f"bench-{args.rows}.duckdb"
    if not store.exists():
        print(f"building a store of {args.rows:,} candles ...", file=sys.stderr)
        build_store(store, args.rows)
    keys = work / "keys"
    if not keys.exists():
        make_keys(keys)
    best: dict[str, dict[str, object]] = {}
    for round_number in range(args.rounds):
        for variant in VARIANTS:
            out = work / "out" / variant
            shutil.rmtree(out, ignore_errors=True)
            result = run_child(["--child", str(store), str(out), str(keys), variant])
            print(
                f"round {round_number + 1} {variant:<18} {result['seconds']:7.2f} s "
                f"{result['peak_rss_mb']:6.0f} MiB",
                file=sys.stderr,
            )
            if variant not in best or result["seconds"] < best[variant]["seconds"]:  # type: ignore[operator]
                best[variant] = result
    base = float(best["none"]["seconds"])  # type: ignore[arg-type]
    print("| encryption | seconds | rows/s | overhead | file MiB | peak RSS MiB | plaintext |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for variant in VARIANTS:
        row = best[variant]
        seconds = float(row["seconds"])  # type: ignore[arg-type]
        exact = (
            "-"
            if variant == "none"
            else (
                "matches"
                if check_plaintext(
                    Path(str(row["path"])), keys, variant, str(row["payload_sha256"])
                )
                else "DIFFERS"
            )
        )
        print(
            f"| {variant} | {seconds:.2f} | {int(row['rows']) / seconds:,.0f} | "  # type: ignore[call-overload]
            f"{(seconds / base - 1) * 100:+.1f}% | {int(row['file_bytes']) / 2**20:.1f} | "  # type: ignore[call-overload]
            f"{float(row['peak_rss_mb']):.0f} | {exact} |"  # type: ignore[arg-type]
        )
    plain_file = Path(str(best["none"]["path"]))
    print()
    print(
        f"Encryption stage alone over the {plain_file.stat().st_size / 2**20:.1f} MiB CSV+zstd "
        "file (best of 3), as a share of the unencrypted export's time:"
    )
    print()
    print("| encryption | stage seconds | share of export |")
    print("|---|---:|---:|")
    for variant in VARIANTS[1:]:
        seconds = min(stage_seconds(plain_file, keys, variant) for _ in range(3))
        print(f"| {variant} | {seconds:.2f} | {seconds / base * 100:.1f}% |")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
