"""Detection on synthetic scenes, one per way real footage fooled it: the live pipeline (detector and
trigger, the code replay and the camera run) at the live clock. Pure: no camera, no Redis."""
import cv2
import numpy as np
import pytest

from tests.scenes import FPS, H, W, Scene, overlaps, person, run, texture


def frames_for(seconds, make):
    return [make(i / FPS) for i in range(int(seconds * FPS))]


def test_a_screen_that_always_moves_neither_alerts_for_ever_nor_hides_someone_walking_in():
    scene, visitor, rng = Scene(1), person(), np.random.default_rng(5)

    def screen(img):
        img[20:60, 20:80] = rng.uniform(40, 220, (40, 60))   # a TV: new content every frame

    alerts, ended = run(frames_for(30, lambda t: scene.frame(
        extra=screen, objects=[(visitor, W - (t - 20) * 30, 100)] if t >= 20 else [])))
    assert [a for a in alerts if a[1] < 20] == []            # the screen alone: no alert
    late = [a for a in alerts if a[1] >= 20]
    assert late and late[0][1] <= 21.0                       # the visitor: within a second
    assert not any(overlaps(b, (20, 20, 80, 60)) for b in late[0][2])


def test_a_second_visitor_during_a_long_event_gets_an_alert_of_their_own():
    scene, first, second = Scene(2), person(7), person(8)

    def make(t):
        objects = [(first, 40 + 30 * np.sin(t * 1.5), 90)]                 # paces, never leaves
        if t >= 12:
            objects.append((second, W - (t - 12) * 30, 100))
        return scene.frame(objects=objects)

    alerts, _ended = run(frames_for(18, make))
    assert len(alerts) == 2 and alerts[0][1] <= 3.5       # the first paces in place from the start
    assert 12 <= alerts[1][1] <= 13.0 and any(b[0] > 200 for b in alerts[1][2])


def test_lights_switched_zone_by_zone_and_down_to_dark_never_alert_but_the_visitor_after_does():
    scene, visitor = Scene(3), person()

    def light_at(t):
        light = np.ones((H, W), np.float32)
        for k, off in enumerate((5, 6, 7)):                   # three banks of lights, one by one
            if off <= t < 12 + k:
                light[:, k * W // 3:(k + 1) * W // 3] *= 0.5
        if 9 <= t < 12:
            light *= 0.16                                     # then almost dark
        return light

    alerts, _ = run(frames_for(18, lambda t: scene.frame(
        light=light_at(t), objects=[(visitor, W - (t - 15) * 30, 100)] if t >= 15 else [])))
    assert len(alerts) == 1 and 15 <= alerts[0][1] <= 16


def test_a_shadow_sliding_in_ahead_of_its_object_does_not_alert_the_object_does():
    scene, visitor = Scene(4), person()

    def make(t):
        light = np.ones((H, W), np.float32)
        if t >= 5:                                            # a soft shadow slides in from the left
            shade = np.zeros((H, W), np.float32)
            shade[60:, :max(0, int((t - 5) * 40))] = 1
            light *= 1 - 0.4 * cv2.GaussianBlur(shade, (0, 0), 4)
        objects = [(visitor, (t - 6) * 40 - 24, 100)] if t >= 6 else []    # its object, 1 s behind
        return scene.frame(light=light, objects=objects)

    alerts, _ = run(frames_for(12, make))
    assert len(alerts) == 1 and 6.0 <= alerts[0][1] <= 7.0
    assert all(overlaps(b, (0, 100, 60, 160)) for b in alerts[0][2])       # boxes on the object


def test_someone_already_walking_in_view_when_watching_starts_alerts_within_a_second_or_so():
    scene, visitor = Scene(5), person()
    alerts, _ = run(frames_for(6, lambda t: scene.frame(objects=[(visitor, 250 - t * 30, 90)])))
    assert alerts and alerts[0][1] <= 1.5


def test_trees_swaying_from_the_first_frame_do_not_alert():
    scene, rng = Scene(6), np.random.default_rng(9)
    leaves = [scene.bg[y:y + 30, x:x + 40].copy() for x, y in ((200, 10), (240, 30))]

    def sway(t):
        def shift(img):
            for k, (x, y) in enumerate(((200, 10), (240, 30))):
                dx = int(round(6 * np.sin(t * 5 + k) + rng.normal(0, 1)))
                img[y:y + 30, x + dx:x + dx + 40] = leaves[k] * 1.3
        return shift

    alerts, _ = run(frames_for(20, lambda t: scene.frame(extra=sway(t))))
    assert alerts == []


def test_a_tree_tossing_over_a_road_does_not_alert_but_every_passing_car_does():
    scene, rng = Scene(11), np.random.default_rng(3)
    scene.bg[:70, :] = 230                                   # bright sky behind the tree
    car = texture(21, 70, 34, scale=2.0, mean=60, contrast=40)
    passes = (20, 35, 50, 65, 80)

    def leaves(img):                                         # dark leaves against the sky, new each frame
        for _ in range(60):
            cv2.circle(img, (int(rng.uniform(120, 260)), int(rng.uniform(0, 80))), int(rng.uniform(2, 5)), 40, -1)

    def make(t):
        cars = [(car, -70 + (t - s) * 70 if k % 2 == 0 else W - (t - s) * 70, 90 + 20 * (k % 2))
                for k, s in enumerate(passes) if s <= t < s + 6]
        return scene.frame(objects=cars, extra=leaves)

    alerts, ended = run(frames_for(90, make))
    assert len(ended) >= len(passes)                         # events end although the tree never stops
    assert [min(a[1] for a in alerts if s <= a[1]) - s for s in passes] == pytest.approx([0.3] * 5, abs=0.5)
    assert all(any(s <= a[1] <= s + 6 for s in passes) for a in alerts)   # no alert for the tree alone
