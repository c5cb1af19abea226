"""The verification stages: HOG on real frames, ONNX models built here, chains and start-up errors."""
from __future__ import annotations

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import config
from app.camera import verifier
from tests.conftest import SHARED_DATA, needs_shared_data


def read_frames(path, wanted: set[int]) -> dict[int, np.ndarray]:
    """The frames with these 0-based indices (decode order), read with cv2.VideoCapture."""
    cap = cv2.VideoCapture(str(path))
    frames, i = {}, 0
    while len(frames) < len(wanted):
        ok, frame = cap.read()
        if not ok:
            break
        if i in wanted:
            frames[i] = frame
        i += 1
    cap.release()
    assert len(frames) == len(wanted), f"could not read frames {sorted(wanted)} of {path}"
    return frames


def motion_boxes(frame: np.ndarray, background: np.ndarray) -> list[list[int]]:
    """Boxes of what differs from an empty frame, as the camera daemon would hand them over."""
    diff = cv2.absdiff(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), cv2.cvtColor(background, cv2.COLOR_BGR2GRAY))
    mask = cv2.dilate((cv2.GaussianBlur(diff, (5, 5), 0) > 30).astype(np.uint8), None, iterations=3)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [list(cv2.boundingRect(c)) for c in contours if cv2.contourArea(c) > 0.002 * mask.size]


def cfg(**kw) -> config.VerifierConfig:
    return config.VerifierConfig(**kw)


# --- hog on real frames --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def person_clip():
    if not (SHARED_DATA / "manifest.json").is_file():
        pytest.skip("../shared/data (the labelled clips) is not beside this checkout")
    # Frames 60-199 show a person walking in; frames 0-50 the empty room.
    return read_frames(SHARED_DATA / "one-by-one-person-detection.mp4", {20, 120, 150})


@needs_shared_data
def test_hog_passes_a_frame_with_a_person(person_clip):
    hog = verifier.build_verifier(cfg(kind="hog"), SHARED_DATA)
    boxes = motion_boxes(person_clip[120], person_clip[20])
    assert boxes, "the person should differ from the empty room"
    verdict = hog.verify([person_clip[120], person_clip[150]], boxes)
    assert verdict.passed, verdict.reason
    assert verdict.stage == "hog" and verdict.score >= 0.5 and verdict.seconds > 0


@needs_shared_data
def test_hog_rejects_an_empty_re_exposed_room():
    frames = read_frames(SHARED_DATA / "clips" / "room_auto_exposure.mp4", {0, 100, 150, 250})
    hog = verifier.build_verifier(cfg(kind="hog"), SHARED_DATA)
    for i in (100, 150, 250):
        boxes = motion_boxes(frames[i], frames[0])
        # Whatever the re-exposure changed, and the whole frame, hold no person.
        assert not hog.verify([frames[i]], boxes).passed
        verdict = hog.verify([frames[i]], [])
        assert not verdict.passed and "no person" in verdict.reason


@needs_shared_data
def test_hog_still_checks_a_person_cut_by_the_frame_edge(person_clip):
    # The region hugging the frame's edges must still be a valid detector input (no crash, a verdict).
    frame = person_clip[120]
    h, w = frame.shape[:2]
    verdict = verifier.build_verifier(cfg(kind="hog"), SHARED_DATA).verify([frame], [[w - 20, h - 20, 20, 20]])
    assert verdict.stage == "hog"


def test_motion_region_is_padded_widened_and_clamped():
    assert verifier.motion_region((100, 200, 3), [], 0.2) == (0, 0, 200, 100)
    assert verifier.motion_region((100, 200, 3), [[50, 10, 20, 40], [80, 20, 10, 10]], 0.0) == (50, 10, 90, 50)
    # Padding grows each side by a fraction of the union, and stops at the frame edge.
    assert verifier.motion_region((100, 200, 3), [[0, 10, 100, 50]], 0.5) == (0, 0, 150, 85)
    # A thin box is widened about its centre to look like a person.
    assert verifier.motion_region((100, 200, 3), [[100, 0, 10, 80]], 0.0, min_aspect=0.5) == (85, 0, 125, 80)


def test_none_passes_everything():
    v = verifier.build_verifier(cfg(kind="none"), SHARED_DATA)
    verdict = v.verify([np.zeros((48, 64, 3), np.uint8)], [])
    assert verdict.passed and verdict.stage == "none"


# --- onnx: tiny models made here --------------------------------------------------------------------

def save_model(path, nodes, inits, in_size, out_shape):
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, in_size, in_size])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, out_shape)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def ssd_model(path, detections, in_size=32):
    """An SSD-style model whose output is always these [image, class, score, x1, y1, x2, y2] rows."""
    det = np.asarray(detections, np.float32)
    n = len(det)
    # A convolution covering the whole input with zero weights: its bias is the output, and any
    # other input size changes the output shape, so a wrong input_size fails at start-up.
    w = np.zeros((7 * n, 3, in_size, in_size), np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(det.ravel(), "b"),
             numpy_helper.from_array(np.array([1, 1, n, 7], np.int64), "shape")]
    nodes = [helper.make_node("Conv", ["image", "w", "b"], ["c"]),
             helper.make_node("Reshape", ["c", "shape"], ["out"])]
    return save_model(path, nodes, inits, in_size, [1, 1, n, 7])


def yolo_model(path, layout, in_size=32):
    """A YOLO-style model with two classes: class 0's score is the pixel brightness (0..1) at each
    position, class 1's is always 0.3; objectness (yolo5) is always 1."""
    cols = (5 if layout == "yolo5" else 4) + 2
    w = np.zeros((cols, 3, 1, 1), np.float32)
    b = np.zeros(cols, np.float32)
    first = cols - 2
    w[first, :, 0, 0] = 1 / 3
    b[first + 1] = 0.3
    if layout == "yolo5":
        b[4] = 1.0
    n = in_size * in_size
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b"),
             numpy_helper.from_array(np.array([1, cols, n], np.int64), "shape")]
    nodes = [helper.make_node("Conv", ["image", "w", "b"], ["c"]),
             helper.make_node("Reshape", ["c", "shape"], ["r" if layout == "yolo5" else "out"])]
    out_shape = [1, cols, n]
    if layout == "yolo5":
        nodes.append(helper.make_node("Transpose", ["r"], ["out"], perm=[0, 2, 1]))
        out_shape = [1, n, cols]
    return save_model(path, nodes, inits, in_size, out_shape)


SSD_ROWS = [[0, 3, 0.9, 0.1, 0.1, 0.5, 0.5],   # a car (class 3) at 0.9
            [0, 1, 0.6, 0.2, 0.2, 0.4, 0.9]]   # a person (class 1) at 0.6
FRAME = np.zeros((120, 160, 3), np.uint8)


def test_onnx_ssd_output_counts_only_the_wanted_classes(tmp_path):
    path = str(ssd_model(tmp_path / "ssd.onnx", SSD_ROWS))
    person = verifier.build_verifier(cfg(kind="onnx", model_path=path, input_size=32), tmp_path)
    verdict = person.verify([FRAME], [[10, 10, 40, 60]])
    assert verdict.passed and verdict.score == pytest.approx(0.6) and verdict.stage == "onnx"
    # The car's higher score does not make a person.
    strict = verifier.build_verifier(cfg(kind="onnx", model_path=path, input_size=32, score_threshold=0.7), tmp_path)
    assert not strict.verify([FRAME], []).passed
    cars = verifier.build_verifier(cfg(kind="onnx", model_path=path, input_size=32, class_ids=[3],
                                       score_threshold=0.7), tmp_path)
    assert cars.verify([FRAME], []).score == pytest.approx(0.9)


@pytest.mark.parametrize("layout", ["yolo5", "yolo8"])
def test_onnx_yolo_output_reads_the_motion_region(tmp_path, layout):
    path = str(yolo_model(tmp_path / f"{layout}.onnx", layout))
    v = verifier.build_verifier(cfg(kind="onnx", model_path=path, input_size=32), tmp_path)
    assert v.layout == layout
    frame = np.zeros((120, 160, 3), np.uint8)
    frame[:, 80:] = 255                                    # right half white, left half black
    bright = v.verify([frame], [[100, 20, 30, 60]])        # motion on the white half
    dark = v.verify([frame], [[10, 20, 30, 60]])           # motion on the black half
    assert bright.passed and bright.score == pytest.approx(1.0, abs=0.02)
    assert not dark.passed and dark.score == 0.0           # class 1 (0.3) is not a person
    assert verifier.build_verifier(cfg(kind="onnx", model_path=path, input_size=32, class_ids=[1],
                                       score_threshold=0.2), tmp_path).verify([frame], []).passed


def test_onnx_input_size_that_does_not_fit_the_model_is_a_startup_error(tmp_path):
    path = str(ssd_model(tmp_path / "ssd.onnx", SSD_ROWS, in_size=32))
    with pytest.raises(config.ConfigError, match="input_size 64"):
        verifier.build_verifier(cfg(kind="onnx", model_path=path, input_size=64), tmp_path)


def test_onnx_missing_malformed_or_unset_model_is_a_clear_error(tmp_path):
    with pytest.raises(config.ConfigError, match="model_path is not set"):
        verifier.build_verifier(cfg(kind="onnx"), tmp_path)
    with pytest.raises(config.ConfigError, match="no such file"):
        verifier.build_verifier(cfg(kind="onnx", model_path="models/absent.onnx"), tmp_path)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf model\x00\xff" * 10)
    with pytest.raises(config.ConfigError, match="not a model OpenCV can load"):
        verifier.build_verifier(cfg(kind="onnx", model_path=str(bad)), tmp_path)


def test_relative_model_path_is_under_the_data_dir(tmp_path):
    ssd_model(tmp_path / "person.onnx", SSD_ROWS)
    v = verifier.build_verifier(cfg(kind="onnx", model_path="person.onnx", input_size=32), tmp_path)
    assert v.verify([FRAME], []).passed


# --- chains and config ------------------------------------------------------------------------------

def test_chain_stops_at_the_first_stage_that_says_no(tmp_path):
    ssd_model(tmp_path / "person.onnx", SSD_ROWS)
    ok = verifier.build_verifier(cfg(kind="none,onnx", model_path="person.onnx", input_size=32), tmp_path)
    assert ok.verify([FRAME], []).passed  # `none` adds nothing to a chain
    chain = verifier.build_verifier(cfg(kind="onnx,hog", model_path="person.onnx", input_size=32), tmp_path)
    assert chain.name == "onnx+hog"
    verdict = chain.verify([FRAME], [])
    # The model sees a person, HOG on a black frame does not: the event fails at the hog stage.
    assert not verdict.passed and verdict.stage == "hog"
    assert verdict.reason.startswith("onnx: ") and "hog: no person" in verdict.reason
    strict = verifier.build_verifier(cfg(kind="onnx,hog", model_path="person.onnx", input_size=32,
                                         score_threshold=0.9), tmp_path)
    first = strict.verify([FRAME], [])
    assert not first.passed and first.stage == "onnx" and "hog" not in first.reason


def test_verifier_kind_comes_from_the_environment(clean_env):
    clean_env.setenv("PYCAM_VERIFIER", "hog,trained")
    assert config.load_settings(config_path=None).verifier.kind == ["hog", "trained"]
    clean_env.setenv("PYCAM_VERIFIER", "hog,magic")
    with pytest.raises(config.ConfigError, match="verifier.kind"):
        config.load_settings(config_path=None)


def test_trained_stage_without_a_model_tells_how_to_make_one(tmp_path):
    with pytest.raises(config.ConfigError, match="python3 -m app.camera.train"):
        verifier.build_verifier(cfg(kind="hog,trained"), tmp_path)
    bad = tmp_path / "models" / "trained.npz"
    bad.parent.mkdir()
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(config.ConfigError, match="not a trained model file"):
        verifier.build_verifier(cfg(kind="trained"), tmp_path)
