// dlib behind a C API. Exceptions never cross into Swift: each entry point catches and reports them.
#include "CDlibShim.h"

#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/image_processing/shape_predictor.h>
#include <dlib/image_transforms.h>
#include <algorithm>
#include <climits>
#include <cmath>
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

// dlib's deserializer sizes each vector and matrix from the count the file declares before reading a
// byte of it, and evaluation trusts every index in the model. So a model file is first walked without
// storing anything: each declared count must fit in the bytes left (every item takes at least one),
// every index must point inside what it indexes and every number must be finite. Only a file that passes
// is handed to dlib, whose allocations are then bounded by the file's size.
namespace landmark_check {

constexpr unsigned long points = 68;

struct Walker {
    std::istream &in;
    std::streamoff end;

    [[noreturn]] static void refuse(const std::string &what) { throw dlib::serialization_error(what); }

    std::streamoff left() {
        std::streamoff at = in.tellg();
        return at < 0 ? 0 : end - at;
    }

    unsigned long count(const char *what) {
        unsigned long n;
        dlib::deserialize(n, in);
        if (n > (unsigned long)left())
            refuse(std::string(what) + ": the file declares " + std::to_string(n) + " of them, more than its remaining " +
                   std::to_string(left()) + " bytes can hold");
        return n;
    }

    unsigned long index(const char *what, unsigned long bound) {
        unsigned long i;
        dlib::deserialize(i, in);
        if (i >= bound)
            refuse(std::string(what) + " " + std::to_string(i) + " is out of range (fewer than " + std::to_string(bound) + ")");
        return i;
    }

    void number(const char *what) {
        float value;
        dlib::deserialize(value, in);
        if (!std::isfinite(value)) refuse(std::string(what) + " is not a finite number");
    }

    /// A matrix<float,0,1>: its row count, which must be `rows` when that is not 0.
    unsigned long column(const char *what, unsigned long rows) {
        long nr, nc;
        dlib::deserialize(nr, in);
        dlib::deserialize(nc, in);
        // dlib's newer format stores the sizes negated (an empty column as 0, -1); its reader negates both
        // when either is negative, and takes only one column.
        if (nr == LONG_MIN || nc == LONG_MIN) refuse(std::string(what) + " has invalid sizes");
        if (nr < 0 || nc < 0) { nr = -nr; nc = -nc; }
        if (nr < 0 || nc != 1) refuse(std::string(what) + " is not a column");
        if ((unsigned long)nr > (unsigned long)left())
            refuse(std::string(what) + ": the file declares " + std::to_string(nr) + " values, more than its remaining bytes can hold");
        if (rows != 0 && (unsigned long)nr != rows)
            refuse(std::string(what) + " has " + std::to_string(nr) + " values, not " + std::to_string(rows));
        for (long r = 0; r < nr; ++r) number(what);
        return (unsigned long)nr;
    }
};

/// Throws dlib::serialization_error naming what is wrong; reads the stream to the model's end.
static void walk(std::istream &in, std::streamoff end) {
    Walker w{in, end};
    int version = 0;
    dlib::deserialize(version, in);
    if (version != 1) Walker::refuse("not a dlib shape predictor (version " + std::to_string(version) + ", not 1)");
    unsigned long shape = w.column("the initial shape", 0);
    if (shape != 2 * points)
        Walker::refuse("the model has " + std::to_string(shape / 2) + " points, not " + std::to_string(points));

    // The largest pixel index each cascade's trees read; checked once the cascade's pixels are known.
    std::vector<unsigned long> pixelsNeeded;
    unsigned long cascades = w.count("cascades");
    for (unsigned long c = 0; c < cascades; ++c) {
        unsigned long needed = 0;
        unsigned long trees = w.count("trees");
        for (unsigned long t = 0; t < trees; ++t) {
            unsigned long splits = w.count("tree splits");
            for (unsigned long s = 0; s < splits; ++s) {
                needed = std::max(needed, w.index("a split's pixel", ULONG_MAX) + 1);
                needed = std::max(needed, w.index("a split's pixel", ULONG_MAX) + 1);
                w.number("a split's threshold");
            }
            // Evaluation walks a full binary tree: one leaf more than splits.
            unsigned long leaves = w.count("tree leaves");
            if (leaves != splits + 1)
                Walker::refuse("a tree has " + std::to_string(leaves) + " leaves for " + std::to_string(splits) + " splits, not one more");
            for (unsigned long l = 0; l < leaves; ++l) w.column("a leaf", shape);
        }
        pixelsNeeded.push_back(needed);
    }

    std::vector<unsigned long> pixels;
    if (w.count("anchor lists") != cascades) Walker::refuse("the anchor lists do not match the cascades");
    for (unsigned long c = 0; c < cascades; ++c) {
        unsigned long anchors = w.count("anchors");
        for (unsigned long a = 0; a < anchors; ++a) w.index("an anchor point", points);
        pixels.push_back(anchors);
    }
    if (w.count("pixel offset lists") != cascades) Walker::refuse("the pixel offset lists do not match the cascades");
    for (unsigned long c = 0; c < cascades; ++c) {
        if (w.count("pixel offsets") != pixels[c]) Walker::refuse("a cascade's pixel offsets do not match its anchors");
        for (unsigned long p = 0; p < pixels[c]; ++p) { w.number("a pixel offset"); w.number("a pixel offset"); }
        if (pixelsNeeded[c] > pixels[c])
            Walker::refuse("a tree reads pixel " + std::to_string(pixelsNeeded[c] - 1) + " of a cascade with " +
                           std::to_string(pixels[c]));
    }
}

}  // namespace landmark_check

extern "C" dlibshim_shape_predictor *dlibshim_shape_predictor_load(const char *path, char *error, int error_capacity) {
    try {
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            put_error("cannot open the landmark model file", error, error_capacity);
            return nullptr;
        }
        in.seekg(0, std::ios::end);
        std::streamoff end = in.tellg();
        in.seekg(0, std::ios::beg);
        if (end < 0 || !in) {
            put_error("cannot read the landmark model file's size", error, error_capacity);
            return nullptr;
        }
        landmark_check::walk(in, end);
        in.clear();
        in.seekg(0, std::ios::beg);
        auto *p = new dlibshim_shape_predictor();
        try {
            dlib::deserialize(p->model, in);
        } catch (...) {
            delete p;
            throw;
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
