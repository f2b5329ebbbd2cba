// A C API over dlib's HOG frontal face detector and 68-point shape predictor (Debian's libdlib-dev),
// so Swift can call them without C++ interop. Images are 8-bit grayscale, row-major with a stride.
#ifndef CDLIBSHIM_H
#define CDLIBSHIM_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One HOG frontal face detector. Not thread-safe: use one per thread.
typedef struct dlibshim_detector dlibshim_detector;

dlibshim_detector *dlibshim_detector_create(void);
void dlibshim_detector_destroy(dlibshim_detector *detector);

/// Detects faces. `upsample` pyramid-up steps (0..2) let it find faces smaller than its 80x80 window.
/// Writes up to `capacity` detections as (left, top, right, bottom) in the input image's pixels and their
/// scores (SVM margins; `threshold` is added to the detector's own), best first.
/// Returns the number written, or -1 on failure (message in `error`).
int dlibshim_detect(dlibshim_detector *detector, const uint8_t *gray, int width, int height, int stride,
                    int upsample, double threshold, double *boxes, double *scores, int capacity,
                    char *error, int error_capacity);

/// The 68-point landmark model (e.g. /usr/share/dlib/shape_predictor_68_face_landmarks.dat).
/// Evaluation only reads the model, so one instance may serve many threads.
typedef struct dlibshim_shape_predictor dlibshim_shape_predictor;

dlibshim_shape_predictor *dlibshim_shape_predictor_load(const char *path, char *error, int error_capacity);
void dlibshim_shape_predictor_destroy(dlibshim_shape_predictor *predictor);

/// Fits the landmarks inside the box (left, top, right, bottom); writes 68 (x, y) pairs to `points`.
/// Returns the number of points (68), or -1 on failure.
int dlibshim_landmarks(const dlibshim_shape_predictor *predictor, const uint8_t *gray, int width, int height,
                       int stride, double left, double top, double right, double bottom, double *points,
                       char *error, int error_capacity);

/// dlib's version as "major.minor.patch" (static storage).
const char *dlibshim_version(void);

#ifdef __cplusplus
}
#endif
#endif
