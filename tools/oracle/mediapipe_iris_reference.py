"""What MediaPipe itself gives on the astronaut photo, for the face_detector pupils (src/engine/annotators/neural/
iris.ts). Not part of run.sh: it needs the `mediapipe` 0.10.14 wheel, which the pinned oracle venv does not hold.
Run it in a throwaway venv (Python 3.11):

  python3 -m venv /tmp/mp && /tmp/mp/bin/pip install --no-deps mediapipe==0.10.14 \
      && /tmp/mp/bin/pip install "numpy<2" "protobuf>=4.25.3,<5" absl-py attrs flatbuffers \
         opencv-python-headless==4.10.0.84 matplotlib
  /tmp/mp/bin/python tools/oracle/mediapipe_iris_reference.py

1. mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
   min_detection_confidence=0.5), as controlnet_aux's ControlNetMediaPipeFace annotator calls it: points 468..477
   (both irises; 468 and 473 are the pupils draw_pupils draws), and the eye corners 33, 133, 362, 263; and the
   same with refine_landmarks=False (the 468-point model our bundled path runs).
2. The eye ROIs computed by MediaPipe's own calculators (LandmarksToDetectionCalculator ->
   DetectionsToRectsCalculator -> RectTransformationCalculator with iris_landmark_landmarks_to_roi.pbtxt's
   options) from annotator_iris.py's corners, so that the numpy re-implementation there is checked against
   MediaPipe's C++ (the wheel lacks ImageCroppingCalculator and TfLiteConverterCalculator, so the crop itself
   cannot be run this way).
Writes tests/fixtures/annotators/iris_mediapipe.{json,bin}.
"""
import json
import os
import sys

import cv2
import mediapipe as mp
import numpy as np
from google.protobuf import text_format
from mediapipe.framework import calculator_pb2
from mediapipe.framework.formats import landmark_pb2, rect_pb2

sys.path.insert(0, os.path.dirname(__file__))
from common import ROOT, save_fixture  # noqa: E402

ROI_GRAPH = '''
input_stream: "image"
input_stream: "landmarks"
output_stream: "roi"
node { calculator: "ImagePropertiesCalculator" input_stream: "IMAGE:image" output_stream: "SIZE:image_size" }
node { calculator: "LandmarksToDetectionCalculator" input_stream: "NORM_LANDMARKS:landmarks" output_stream: "DETECTION:detection" }
node {
  calculator: "DetectionsToRectsCalculator"
  input_stream: "DETECTION:detection" input_stream: "IMAGE_SIZE:image_size" output_stream: "NORM_RECT:raw_roi"
  options: { [mediapipe.DetectionsToRectsCalculatorOptions.ext] {
    rotation_vector_start_keypoint_index: 0 rotation_vector_end_keypoint_index: 1 rotation_vector_target_angle_degrees: 0 } }
}
node {
  calculator: "RectTransformationCalculator"
  input_stream: "NORM_RECT:raw_roi" input_stream: "IMAGE_SIZE:image_size" output_stream: "roi"
  options: { [mediapipe.RectTransformationCalculatorOptions.ext] { scale_x: 2.3 scale_y: 2.3 square_long: true } }
}
'''


def face_mesh(img, refine):
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=refine, min_detection_confidence=0.5) as fm:
        res = fm.process(img).multi_face_landmarks
    H, W = img.shape[:2]
    return np.array([[p.x * W, p.y * H] for p in res[0].landmark], np.float64)


def mediapipe_rois(img, corners):
    """corners: normalized [[x, y]] x 4 (33, 133, 362, 263) -> [left roi, right roi] as (cx, cy, w, h, rotation)."""
    from mediapipe.calculators.util import detections_to_rects_calculator_pb2, rect_transformation_calculator_pb2  # noqa: F401
    cfg = text_format.Parse(ROI_GRAPH, calculator_pb2.CalculatorGraphConfig())
    out = []
    g = mp.CalculatorGraph(graph_config=cfg)
    g.observe_output_stream('roi', lambda stream, packet: out.append(mp.packet_getter.get_proto(packet)))
    g.start_run()
    for t, (a, b) in enumerate(((0, 1), (2, 3))):
        lm = landmark_pb2.NormalizedLandmarkList()
        for i in (a, b):
            p = lm.landmark.add()
            p.x, p.y = float(corners[i][0]), float(corners[i][1])
        g.add_packet_to_input_stream('image', mp.packet_creator.create_image_frame(image_format=mp.ImageFormat.SRGB, data=img).at(t))
        g.add_packet_to_input_stream('landmarks', mp.packet_creator.create_proto(lm).at(t))
    g.close()
    rois = []
    for r in out:
        rr = rect_pb2.NormalizedRect()
        rr.CopyFrom(r)
        rois.append([rr.x_center, rr.y_center, rr.width, rr.height, rr.rotation])
    return rois


def main():
    img = cv2.cvtColor(cv2.imread(os.path.join(ROOT, 'tests/fixtures/photos/astronaut-256.png')), cv2.COLOR_BGR2RGB)
    refined = face_mesh(img, True)
    plain = face_mesh(img, False)
    print('refine_landmarks=True: 468', refined[468].round(3), '473', refined[473].round(3))
    tensors = {'refined_iris_px': refined[468:478].astype(np.float32),
               'refined_corners_px': refined[[33, 133, 362, 263]].astype(np.float32),
               'plain_corners_px': plain[[33, 133, 362, 263]].astype(np.float32)}
    # the ROIs of annotator_iris.py's cases, by MediaPipe's calculators
    header = json.load(open(os.path.join(ROOT, 'tests/fixtures/annotators/iris.json')))
    bin_ = open(os.path.join(ROOT, 'tests/fixtures/annotators/iris.bin'), 'rb').read()

    def tensor(key):
        h = header['tensors'][key]
        return np.frombuffer(bin_[h['offset']:h['offset'] + h['length']], dtype=h['dtype']).reshape(h['shape'])
    for name in header['meta']['cases']:
        image = img if name == 'astronaut' else np.ascontiguousarray(tensor(f'{name}/image'))
        rois = mediapipe_rois(image, tensor(f'{name}/corners'))
        tensors[f'{name}/rois'] = np.array(rois, np.float32)
        print(name, np.array(rois).round(5))
    save_fixture('annotators/iris_mediapipe', tensors, {'mediapipe': mp.__version__})


if __name__ == '__main__':
    main()
