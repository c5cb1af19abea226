#!/usr/bin/env python3
"""Detection quality and speed on the labelled clips, beside the original system's pipeline.

    python3 -m bench.detection [--manifest ../shared/data/manifest.json] [--json]

Both pipelines see the same decoded BGR frames in the same run; CPU per frame counts only the
pipeline (decoding is the same for both and is left out). Scoring is ../shared/tools/evaluate.py's.
"""
import argparse
import json
import os
import statistics
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import cv2

cv2.setNumThreads(1)  # per-frame work is small: count CPU, not thread start-up (as on a busy Pi)

import config
from app.camera.pipeline import Pipeline
from bench import shared_tools


def decode(path):
    cap = cv2.VideoCapture(path)
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            return frames, fps
        frames.append(frame)


def summary(rows):
    lat = [v for r in rows for v in r["latencies"]]
    return {"detected": sum(r["detected"] for r in rows), "intervals": sum(r["intervals"] for r in rows),
            "false_alerts": sum(r["false"] for r in rows),
            "median_latency_s": round(statistics.median(lat), 2) if lat else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", default=os.path.join(ROOT, "..", "shared", "data", "manifest.json"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    tools = os.path.join(os.path.dirname(os.path.abspath(a.manifest)), "..", "tools")
    score = shared_tools.load("evaluate", tools).score
    SeedPipeline = shared_tools.load("reference", tools).SeedPipeline
    base = os.path.dirname(os.path.abspath(a.manifest))
    settings = config.load_settings(env={}, config_path=None)
    ours, theirs, cpu = [], [], {"pycam": 0.0, "original": 0.0}
    n_frames = 0
    for clip in json.load(open(a.manifest))["clips"]:
        frames, fps = decode(os.path.join(base, clip["source"]))
        n_frames += len(frames)
        pipe, trig = Pipeline(settings), []
        t0 = time.process_time()
        for i, f in enumerate(frames):
            if pipe.step(i, i / fps, f)[1].alert:
                trig.append(i)
        cpu["pycam"] += time.process_time() - t0
        ref, ref_trig = SeedPipeline(clip["fps"]), []
        t0 = time.process_time()
        for i, f in enumerate(frames):
            if ref.step(i, f):
                ref_trig.append(i)
        cpu["original"] += time.process_time() - t0
        ours.append(score(clip, trig, len(frames)))
        theirs.append(score(clip, ref_trig, len(frames)))
        if not a.json:
            o, t = ours[-1], theirs[-1]
            print(f'{clip["name"]:34s} pycam {o["detected"]}/{o["intervals"]} false {o["false"]:2d}   '
                  f'original {t["detected"]}/{t["intervals"]} false {t["false"]:2d}')
    result = {"frames": n_frames, "pycam": summary(ours), "original": summary(theirs),
              "cpu_ms_per_frame": {k: round(1000 * v / n_frames, 3) for k, v in cpu.items()}}
    result["cpu_ratio"] = round(cpu["pycam"] / cpu["original"], 3)
    print(json.dumps(result) if a.json else json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
