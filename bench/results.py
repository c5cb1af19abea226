"""The README's results: the original pipeline and OpenCV's MOG2 vs pycam, with each verifier.

    .venv/bin/python -m bench.results [--manifest ../shared/data/manifest.json] [--verifiers none,hog]
                                      [--onnx-model FILE] [--timeline-clip one_by_one_people]

For every clip of the manifest it runs the original system's pipeline (../shared/tools/reference.py,
in this process, as evaluate.py does), OpenCV's MOG2 at the same working width (`mog2`), and
pycam's replay at the live clock (as `evaluate.py --live-clock`)
    python3 app/security_system.py --replay --source SRC --events-out F.jsonl --clock-origin NOW
once per verifier (PYCAM_VERIFIER=none | hog | onnx when a model is given), scores the alerts with
evaluate.py's own `score` (an alert counts for an interval when it fires inside [start, end + 2 s];
any other alert is false), and prints and writes imgs/results.md (the table) and imgs/timeline.png
(alerts against the labelled intervals of one clip, drawn with OpenCV). CPU per frame is the CPU
time (user + system, all threads) of the replay child, or of the reference loop, over the frames.
It also measures the hog verifier's CPU per event on a 1280x720 frame (see `verifier_cost`).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import cv2
import numpy as np

DEFAULT_MANIFEST = ROOT.parent / "shared" / "data" / "manifest.json"
TOOLS = ROOT.parent / "shared" / "tools"
IMGS = ROOT / "imgs"


def load_evaluate(tools: Path = TOOLS):
    """The shared scoring module (its `score` and `reference_triggers`), so every figure scores alike."""
    from bench import shared_tools
    return shared_tools.load("evaluate", tools)


def children_cpu() -> float:
    """CPU seconds used so far by this process's finished children (user + system)."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def replay(source: Path, verifier: str, extra_env: dict | None = None, timeout: float = 1800) -> tuple[list[int], float]:
    """Alert frames of pycam's replay on one source with one verifier, and the child's CPU seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "events.jsonl"
        env = dict(os.environ, PYCAM_VERIFIER=verifier, PYCAM_DATA_DIR=str(Path(tmp) / "data"),
                   **(extra_env or {}))
        before = children_cpu()
        # The live clock, as evaluate.py --live-clock: frame times as large as a camera's.
        run = subprocess.run([sys.executable, "app/security_system.py", "--replay", "--source", str(source),
                              "--events-out", str(out), "--clock-origin", f"{time.time():.3f}"], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=timeout)
        cpu = children_cpu() - before
        if run.returncode != 0:
            raise RuntimeError(f"replay of {source} with verifier {verifier} failed ({run.returncode}): "
                               f"{run.stderr[-800:]}")
        alerts = [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.exists() else []
    # trigger_frame is the frame the owner is notified at (after a late verifier pass, that frame).
    return [int(a["trigger_frame"]) for a in alerts], cpu


def reference(evaluate, source: Path, fps: float) -> tuple[list[int], float, int]:
    """Alert frames of the original pipeline, its CPU seconds (this process) and the frame count."""
    start = time.process_time()
    triggers, frames = evaluate.reference_triggers(str(source), fps)
    return triggers, time.process_time() - start, frames


def mog2(source: Path, fps: float, width: int = 320, min_area: float = 0.001) -> tuple[list[int], float, int]:
    """OpenCV's MOG2 at pycam's working width with a plain 3-of-5-frames trigger and a 5 s cooldown:
    the standard baseline. Alert frames, CPU seconds (this process) and the frame count."""
    from collections import deque
    start = time.process_time()
    cap = cv2.VideoCapture(str(source))
    subtractor = cv2.createBackgroundSubtractorMOG2(detectShadows=True)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    recent: deque[bool] = deque(maxlen=5)
    triggers, last, i = [], None, 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        h, w = frame.shape[:2]
        ww = min(width, w)
        fg = subtractor.apply(cv2.resize(frame, (ww, max(1, round(h * ww / w)))))
        fg = cv2.morphologyEx(np.where(fg == 255, 255, 0).astype(np.uint8), cv2.MORPH_OPEN, kernel)
        n, _labels, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(fg, kernel, iterations=2))
        moving = any(stats[k, cv2.CC_STAT_AREA] >= min_area * fg.size for k in range(1, n))
        recent.append(moving)
        if moving and sum(recent) >= 3 and (last is None or (i - last) / fps >= 5.0):
            triggers.append(i)
            last = i
        i += 1
    cap.release()
    return triggers, time.process_time() - start, i


def summarise(name: str, rows: list[dict], cpu: float, frames: int) -> dict:
    """One table row from per-clip scores."""
    intervals = sum(r["intervals"] for r in rows)
    detected = sum(r["detected"] for r in rows)
    false = sum(r["false"] for r in rows)
    hours = sum(r["seconds"] for r in rows) / 3600
    lats = [x for r in rows for x in r["latencies"]]
    nuisance = [r for r in rows if r["intervals"] == 0]
    return {"system": name, "intervals": intervals, "detected": detected, "false": false,
            "false_per_hour": false / hours if hours else 0.0,
            "nuisance_false": sum(r["false"] for r in nuisance), "nuisance_clips": len(nuisance),
            "median_latency_s": statistics.median(lats) if lats else None,
            "cpu_ms_per_frame": 1000 * cpu / frames if frames else None, "clips": rows}


def markdown(summaries: list[dict], clips: list[dict], cost: dict | None, training: dict | None,
             when: str) -> str:
    """The results section: the summary table, the per-clip table and the verifier's cost."""
    lines = ["| system | intervals detected | false alerts (per hour) | false alerts on nuisance clips "
             "| median latency | CPU per frame |", "|---|---|---|---|---|---|"]
    for s in summaries:
        lat = "-" if s["median_latency_s"] is None else f"{s['median_latency_s']:.1f} s"
        cpu = "-" if s["cpu_ms_per_frame"] is None else f"{s['cpu_ms_per_frame']:.1f} ms"
        lines.append(f"| {s['system']} | {s['detected']}/{s['intervals']} | {s['false']} "
                     f"({s['false_per_hour']:.0f}/h) | {s['nuisance_false']} on {s['nuisance_clips']} clips "
                     f"| {lat} | {cpu} |")
    lines += ["", "Per clip (intervals detected, false alerts):", "",
              "| clip | what | " + " | ".join(s["system"] for s in summaries) + " |",
              "|---|---|" + "---|" * len(summaries)]
    for k, clip in enumerate(clips):
        cells = []
        for s in summaries:
            r = s["clips"][k]
            cells.append(f"{r['detected']}/{r['intervals']}, {r['false']} false")
        lines.append(f"| {clip['name']} | {clip.get('kind', '')} | " + " | ".join(cells) + " |")
    lines += ["", "With a verifier, the trigger frame is verified and, while a refused event keeps moving "
              "(up to 10 s), a newer frame every 0.5 s, exactly as the daemon does; latency counts to the "
              "frame that passed."]
    if cost:
        lines += ["", f"hog verifier cost on a {cost['frame']} frame: {cost['ms_per_frame_person']:.0f} ms CPU "
                  f"for a person-sized motion region (one frame decides), {cost['ms_per_event_worst']:.0f} ms "
                  f"for an event it rejects ({cost['frames']} frames checked), "
                  f"{cost['ms_per_frame_full']:.0f} ms per frame with no motion box (whole frame); "
                  f"measured on {cost['cpu']}."]
    if training:
        lines += ["", f"`python3 -m app.camera.train` on {training['images']} labelled frames ({training['occupied']} "
                  f"occupied, {training['unoccupied']} unoccupied): {training['seconds']:.1f} s "
                  f"({training['cpu_seconds']:.1f} s CPU) including {training['folds']}-fold cross-validation, "
                  f"which gave precision {training['cv_precision']:.2f} and recall {training['cv_recall']:.2f} "
                  "(neighbouring frames of one clip, so an optimistic figure)."]
    lines += ["", f"Generated by `python3 -m bench.results` on {when}."]
    return "\n".join(lines) + "\n"


# --- the timeline picture ---------------------------------------------------------------------------

def timeline(clip: dict, frames: int, alerts: dict[str, list[int]], path: Path) -> None:
    """One clip: labelled intervals (+2 s tolerance) as bands, each system's alerts as ticks on its row.

    Green ticks count for an interval, red ticks are false alerts. Drawn with OpenCV (no matplotlib
    on the Pi image) at 1200 px wide.
    """
    width, left, right, row_h, top = 1200, 270, 20, 44, 56
    height = top + row_h * len(alerts) + 48
    img = np.full((height, width, 3), 255, np.uint8)
    plot_w = width - left - right
    fps, tol = clip["fps"], int(round(2 * clip["fps"]))
    x_of = lambda f: int(left + plot_w * f / max(1, frames))  # noqa: E731
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(img, f"{clip['name']}: alerts against the labelled intervals (person visible)", (12, 26),
                font, 0.6, (30, 30, 30), 1, cv2.LINE_AA)
    y_end = top + row_h * len(alerts)
    for s, e in clip["intervals"]:
        cv2.rectangle(img, (x_of(s), top), (x_of(e), y_end), (250, 222, 190), -1)            # interval
        cv2.rectangle(img, (x_of(e), top), (x_of(min(frames, e + tol)), y_end), (252, 240, 228), -1)
    for k, (name, frames_fired) in enumerate(alerts.items()):
        y = top + row_h * k
        cv2.line(img, (left, y + row_h // 2), (width - right, y + row_h // 2), (200, 200, 200), 1)
        cv2.putText(img, name, (12, y + row_h // 2 + 5), font, 0.5, (30, 30, 30), 1, cv2.LINE_AA)
        for t in frames_fired:
            ok = any(s <= t <= e + tol for s, e in clip["intervals"])
            colour = (60, 160, 40) if ok else (40, 40, 220)
            cv2.line(img, (x_of(t), y + 8), (x_of(t), y + row_h - 8), colour, 3)
    cv2.line(img, (left, y_end), (width - right, y_end), (80, 80, 80), 1)
    step = 10 if frames / fps <= 60 else 20
    for sec in range(0, int(frames / fps) + 1, step):
        x = x_of(sec * fps)
        cv2.line(img, (x, y_end), (x, y_end + 5), (80, 80, 80), 1)
        cv2.putText(img, f"{sec}s", (x - 8, y_end + 20), font, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.putText(img, "blue: person visible (light: +2 s that still counts)   green: alert   red: false alert",
                (left, height - 8), font, 0.45, (60, 60, 60), 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, png = cv2.imencode(".png", img)
    from app import utils
    utils.atomic_write_bytes(path, png.tobytes())


# --- the verifier's own cost ------------------------------------------------------------------------

def verifier_cost(manifest: Path, repeats: int = 10) -> dict:
    """CPU per event of the hog stage on a 1280x720 frame: a person's region, a rejected event, no box."""
    import config
    from app.camera import verifier
    clip = manifest.parent / "one-by-one-person-detection.mp4"
    cap = cv2.VideoCapture(str(clip))
    frames = {}
    for i in range(160):
        ok, frame = cap.read()
        if not ok:
            break
        if i in (20, 150):
            frames[i] = cv2.resize(frame, (1280, 720), interpolation=cv2.INTER_LINEAR)
    empty, person = frames[20], frames[150]
    diff = cv2.absdiff(cv2.cvtColor(person, cv2.COLOR_BGR2GRAY), cv2.cvtColor(empty, cv2.COLOR_BGR2GRAY))
    mask = cv2.dilate((cv2.GaussianBlur(diff, (5, 5), 0) > 30).astype(np.uint8), None, iterations=3)
    box = list(cv2.boundingRect(mask))
    hog = verifier.build_verifier(config.VerifierConfig(kind="hog"), ROOT)

    def cpu_of(frames_, boxes) -> tuple[float, bool]:
        start = time.process_time()
        for _ in range(repeats):
            verdict = hog.verify(frames_, boxes)
        return (time.process_time() - start) / repeats, verdict.passed

    per_person, passed = cpu_of([person], [box])
    per_reject, rejected_passed = cpu_of([empty] * 3, [box])
    per_full, _ = cpu_of([empty], [])
    cpu_name = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                     if line.startswith("model name")), "this machine") if os.path.exists("/proc/cpuinfo") else "this machine"
    return {"frame": "1280x720", "box": box, "person_passed": passed, "empty_passed": rejected_passed,
            "ms_per_frame_person": 1000 * per_person, "ms_per_event_worst": 1000 * per_reject, "frames": 3,
            "ms_per_frame_full": 1000 * per_full, "cpu": cpu_name, "threads": cv2.getNumThreads()}


def train_cost(manifest: Path, count: int = 300) -> dict:
    """Time `app.camera.train` on `count` labelled full-size frames of the Intel clip (labels from the manifest)."""
    from app import utils
    from app.camera import train
    clip = next(c for c in json.loads(manifest.read_text())["clips"] if c["name"] == "one_by_one_people")
    step = max(1, clip["frames"] // count)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "training"
        labels = {}
        cap = cv2.VideoCapture(str(manifest.parent / clip["source"]))
        i = 0
        while len(labels) < count:
            ok, frame = cap.read()
            if not ok:
                break
            if i % step == 0:
                event_id = f"20260101-{i // 3600:02d}{i // 60 % 60:02d}{i % 60:02d}-{i:06x}"
                person = any(s <= i <= e for s, e in clip["intervals"])
                utils.atomic_write_bytes(folder / f"{event_id}.jpg", cv2.imencode(".jpg", frame)[1].tobytes())
                labels[event_id] = {"event_id": event_id, "label": "occupied" if person else "unoccupied"}
            i += 1
        utils.atomic_write_json(folder / "labels.json", labels)
        start_cpu, start = time.process_time(), time.monotonic()
        report = train.train(Path(tmp), Path(tmp) / "trained.npz")
        return {"images": len(labels), "seconds": time.monotonic() - start,
                "cpu_seconds": time.process_time() - start_cpu, "occupied": report["occupied"],
                "unoccupied": report["unoccupied"], "cv_precision": report["precision"],
                "cv_recall": report["recall"], "folds": report["folds"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--manifest", type=Path, default=DEFAULT_MANIFEST)
    ap.add_argument("--tools", type=Path, default=TOOLS, help="folder holding evaluate.py and reference.py")
    ap.add_argument("--verifiers", default="none,hog", help="comma-separated PYCAM_VERIFIER values to replay")
    ap.add_argument("--onnx-model", type=Path, help="also replay with verifier onnx and this model file")
    ap.add_argument("--clips", help="comma-separated clip names (default: all)")
    ap.add_argument("--timeline-clip", default="one_by_one_people")
    ap.add_argument("--no-reference", action="store_true", help="skip the original pipeline")
    ap.add_argument("--no-mog2", action="store_true", help="skip OpenCV's MOG2 baseline")
    ap.add_argument("--name", default="results", help="file names: NAME.md and NAME-timeline.png in --out")
    ap.add_argument("--no-costs", action="store_true", help="skip the verifier and training cost runs")
    ap.add_argument("--out", type=Path, default=IMGS, help="where results.md and timeline.png go")
    ap.add_argument("--json", type=Path, help="also write every number as JSON here")
    args = ap.parse_args(argv)
    if not args.manifest.is_file():
        print(f"bench.results: no manifest at {args.manifest} (../shared/data is needed)", file=sys.stderr)
        return 2
    evaluate = load_evaluate(args.tools)
    base = args.manifest.parent
    clips = json.loads(args.manifest.read_text())["clips"]
    if args.clips:
        wanted = set(args.clips.split(","))
        clips = [c for c in clips if c["name"] in wanted]
    systems: list[tuple[str, str, dict]] = []   # (row name, verifier, extra env)
    for v in [v.strip() for v in args.verifiers.split(",") if v.strip()]:
        systems.append(("pycam detector" if v == "none" else f"pycam + {v}", v, {}))
    if args.onnx_model:
        # The model path has no environment variable: hand the replay a one-setting YAML file.
        cfg_file = Path(tempfile.mkdtemp()) / "onnx.yaml"
        cfg_file.write_text(json.dumps({"verifier": {"model_path": str(args.onnx_model.resolve())}}))
        systems.append(("pycam + onnx", "onnx", {"PYCAM_CONFIG": str(cfg_file)}))

    per_system: dict[str, dict] = {}
    if not args.no_reference:
        per_system["original (rpi-security-system)"] = {"rows": [], "cpu": 0.0, "frames": 0, "alerts": {}}
    if not args.no_mog2:
        per_system["OpenCV MOG2, 3 of 5 frames"] = {"rows": [], "cpu": 0.0, "frames": 0, "alerts": {}}
    for name, _v, _env in systems:
        per_system[name] = {"rows": [], "cpu": 0.0, "frames": 0, "alerts": {}}
    for clip in clips:
        src = base / clip["source"]
        n = clip["frames"]
        if not args.no_reference:
            trig, cpu, counted = reference(evaluate, src, clip["fps"])
            s = per_system["original (rpi-security-system)"]
            s["rows"].append(evaluate.score(clip, trig, n)); s["cpu"] += cpu; s["frames"] += counted
            s["alerts"][clip["name"]] = trig
        if not args.no_mog2:
            trig, cpu, counted = mog2(src, clip["fps"])
            s = per_system["OpenCV MOG2, 3 of 5 frames"]
            s["rows"].append(evaluate.score(clip, trig, n)); s["cpu"] += cpu; s["frames"] += counted
            s["alerts"][clip["name"]] = trig
        for name, v, env in systems:
            trig, cpu = replay(src, v, env)
            s = per_system[name]
            s["rows"].append(evaluate.score(clip, trig, n)); s["cpu"] += cpu; s["frames"] += n
            s["alerts"][clip["name"]] = trig
        print(f"{clip['name']:32s} " + " | ".join(
            f"{k}: {s['rows'][-1]['detected']}/{s['rows'][-1]['intervals']}, {s['rows'][-1]['false']} false"
            for k, s in per_system.items()), flush=True)

    summaries = [summarise(k, s["rows"], s["cpu"], s["frames"]) for k, s in per_system.items()]
    cost = None if args.no_costs else verifier_cost(args.manifest)
    training = None if args.no_costs else train_cost(args.manifest)
    when = time.strftime("%Y-%m-%d")
    table = markdown(summaries, clips, cost, training, when)
    print()
    print(table)
    from app import utils
    utils.atomic_write_bytes(args.out / f"{args.name}.md", table.encode())
    tl = next((c for c in clips if c["name"] == args.timeline_clip), clips[0] if clips else None)
    if tl is not None:
        idx = clips.index(tl)
        picture = args.out / ("timeline.png" if args.name == "results" else f"{args.name}-timeline.png")
        timeline(tl, tl["frames"], {k: s["alerts"][tl["name"]] for k, s in per_system.items()}, picture)
        print(f"wrote {args.out / (args.name + '.md')} and {picture} ({tl['name']}, clip {idx + 1})")
    if args.json:
        utils.atomic_write_json(args.json, {"summaries": summaries, "verifier_cost": cost, "train_cost": training})
    return 0


if __name__ == "__main__":
    sys.exit(main())
