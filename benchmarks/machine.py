"""What every benchmark records about the machine and the process: CPU, memory, versions, CPU time."""

from __future__ import annotations

import datetime
import os
import platform
import resource


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def machine_info() -> dict:
    from importlib import metadata

    model, flags, family, number = "unknown", "", None, None
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            if line.startswith("cpu family") and family is None:
                family = line.split(":", 1)[1].strip()
            if line.split(":")[0].strip() == "model" and number is None:
                number = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1]
    except OSError:
        pass
    mem_gb = None
    try:
        for line in open("/proc/meminfo", encoding="utf-8"):
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 ** 2, 1)
    except OSError:
        pass

    def version(pkg):
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    return {
        "cpu_model": model + (f" (family {family}, model {number})" if family else ""),
        "cpu_cores": os.cpu_count(),
        "avx512_bf16": "avx512_bf16" in flags.split(),
        "amx_bf16": "amx_bf16" in flags.split(),
        "memory_gb": mem_gb,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": version("tensorflow"),
        "tf_keras": version("tf_keras"),
        "transformers": version("transformers"),
        "tokenizers": version("tokenizers"),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_average_at_start": list(os.getloadavg()),
    }


def write_report(out_dir, stem: str, report: dict, markdown: str) -> None:
    """``OUT/STEM.json`` (the figures) and ``OUT/STEM.md`` (the table), then say where they went."""
    import json
    from pathlib import Path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1))
    (out / f"{stem}.md").write_text(markdown)
    print(markdown)
    print(f"wrote {out / (stem + '.json')} and {out / (stem + '.md')}")
