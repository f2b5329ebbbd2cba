// dlib behind a C API. Exceptions never cross into Swift: each entry point catches and reports them.
#include "CDlibShim.h"

#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_processing/shape_predictor.h>
#include <dlib/image_transforms.h>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

struct dlibshim_detector {
    dlib::frontal_face_detector detector = dlib::get_frontal_face_detector();
};

struct dlibshim_shape_predictor {
    dlib::shape_predictor model;
};

static void put_error(const char *message, char *error, int capacity) {
    if (!error || capacity <= 0) return;
    std::strncpy(error, message, (size_t)capacity - 1);
    error[capacity - 1] = 0;
}

static void copy_gray(const uint8_t *gray, int width, int height, int stride, dlib::array2d<unsigned char> &img) {
    img.set_size(height, width);
    for (int y = 0; y < height; ++y) {
        std::memcpy(&img[y][0], gray + (size_t)y * (size_t)stride, (size_t)width);
    }
}

extern "C" dlibshim_detector *dlibshim_detector_create(void) {
    try { return new dlibshim_detector(); } catch (...) { return nullptr; }
}

extern "C" void dlibshim_detector_destroy(dlibshim_detector *detector) { delete detector; }

extern "C" int dlibshim_detect(dlibshim_detector *detector, const uint8_t *gray, int width, int height, int stride,
                               int upsample, double threshold, double *boxes, double *scores, int capacity,
                               char *error, int error_capacity) {
    if (!detector || !gray || width <= 0 || height <= 0 || stride < width || upsample < 0 || upsample > 2) {
        put_error("invalid arguments", error, error_capacity);
        return -1;
    }
    try {
        dlib::array2d<unsigned char> img;
        copy_gray(gray, width, height, stride, img);
        for (int i = 0; i < upsample; ++i) dlib::pyramid_up(img);
        std::vector<dlib::rect_detection> found;
        detector->detector(img, found, threshold);
        std::stable_sort(found.begin(), found.end(), [](const dlib::rect_detection &a, const dlib::rect_detection &b) {
            return a.detection_confidence > b.detection_confidence;
        });
        const double scale = 1.0 / (double)(1 << upsample);
        int n = std::min((int)found.size(), capacity);
        for (int i = 0; i < n; ++i) {
            // pyramid_up doubles coordinates; dlib rectangles are inclusive, so right/bottom + 1 is the edge.
            const dlib::rectangle &r = found[i].rect;
            boxes[4 * i + 0] = r.left() * scale;
            boxes[4 * i + 1] = r.top() * scale;
            boxes[4 * i + 2] = (r.right() + 1) * scale;
            boxes[4 * i + 3] = (r.bottom() + 1) * scale;
            scores[i] = found[i].detection_confidence;
        }
        return n;
    } catch (const std::exception &e) {
        put_error(e.what(), error, error_capacity);
        return -1;
    } catch (...) {
        put_error("unknown dlib error", error, error_capacity);
        return -1;
    }
}

extern "C" dlibshim_shape_predictor *dlibshim_shape_predictor_load(const char *path, char *error, int error_capacity) {
    try {
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            put_error("cannot open the landmark model file", error, error_capacity);
            return nullptr;
        }
        auto *p = new dlibshim_shape_predictor();
        try {
            dlib::deserialize(p->model, in);
        } catch (...) {
            delete p;
            throw;
        }
        if (p->model.num_parts() != 68) {
            delete p;
            put_error("the landmark model does not have 68 points", error, error_capacity);
            return nullptr;
        }
        return p;
    } catch (const std::exception &e) {
        put_error(e.what(), error, error_capacity);
        return nullptr;
    } catch (...) {
        put_error("unknown dlib error", error, error_capacity);
        return nullptr;
    }
}

extern "C" void dlibshim_shape_predictor_destroy(dlibshim_shape_predictor *predictor) { delete predictor; }

extern "C" int dlibshim_landmarks(const dlibshim_shape_predictor *predictor, const uint8_t *gray, int width,
                                  int height, int stride, double left, double top, double right, double bottom,
                                  double *points, char *error, int error_capacity) {
    if (!predictor || !gray || width <= 0 || height <= 0 || stride < width || !points) {
        put_error("invalid arguments", error, error_capacity);
        return -1;
    }
    try {
        dlib::array2d<unsigned char> img;
        copy_gray(gray, width, height, stride, img);
        dlib::rectangle box((long)std::lround(left), (long)std::lround(top),
                            (long)std::lround(right) - 1, (long)std::lround(bottom) - 1);
        dlib::full_object_detection shape = predictor->model(img, box);
        int n = (int)shape.num_parts();
        for (int i = 0; i < n; ++i) {
            points[2 * i] = (double)shape.part(i).x();
            points[2 * i + 1] = (double)shape.part(i).y();
        }
        return n;
    } catch (const std::exception &e) {
        put_error(e.what(), error, error_capacity);
        return -1;
    } catch (...) {
        put_error("unknown dlib error", error, error_capacity);
        return -1;
    }
}

#include <dlib/revision.h>
#define DLIBSHIM_STR2(x) #x
#define DLIBSHIM_STR(x) DLIBSHIM_STR2(x)

extern "C" const char *dlibshim_version(void) {
    return DLIBSHIM_STR(DLIB_MAJOR_VERSION) "." DLIBSHIM_STR(DLIB_MINOR_VERSION) "." DLIBSHIM_STR(DLIB_PATCH_VERSION);
}
