// The image loader's JPEG path: decode with libjpeg-turbo, crop a box, resize
// it with PIL's antialiased bilinear resampling, optionally mirror it, all on
// libuv's thread pool. One call per image; the main thread only copies the
// result into the batch.
//
//   jpegDecodeCrop(buffer, {left, top, width, height, outWidth, outHeight, flip?, failOn?})
//     -> Promise<Uint8Array> of outHeight * outWidth * 3 bytes (RGB, HWC)
//
// Colour handling follows PIL's convert('RGB') of what PIL's JPEG plug-in
// decodes: YCbCr and RGB JPEGs through libjpeg's RGB output (libjpeg's default
// accurate integer IDCT and fancy upsampling, as PIL leaves them), grayscale
// replicated to three channels, CMYK/YCCK read as Adobe-inverted CMYK and
// converted with PIL's formula. Errors never abort: libjpeg's error_exit
// returns here through longjmp and the promise rejects with libjpeg's message.
//
// The resampler is written from the description of PIL's Resample.c:
// separable passes (horizontal first, on the rows the vertical pass needs,
// rounded to 8 bits; then vertical), a triangle filter whose support is
// scaled by max(1, in/out), per-output weights normalised to sum 1 and then
// held as fixed-point integers with 22 fractional bits, sums started at one
// half and shifted back with the result clamped to 0..255.
#include "common.h"

#include <cstdio>  // before jpeglib.h, which uses FILE
#include <jpeglib.h>
#include <jerror.h>

#include <csetjmp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace advml {

namespace {

// How damaged a file may be (sharp's failOn levels, most lenient first).
enum FailLevel { kFailNone = 0, kFailTruncated = 1, kFailError = 2, kFailWarning = 3 };

struct ErrorState {
  jpeg_error_mgr mgr;
  jmp_buf jump;
  int failLevel;
  char message[JMSG_LENGTH_MAX];
};

void onErrorExit(j_common_ptr cinfo) {
  auto* st = reinterpret_cast<ErrorState*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, st->message);
  longjmp(st->jump, 1);
}

// Warnings (msg_level -1) fail the decode as libvips does at the same level:
// a premature end of data at 'truncated' and above, any warning at 'warning'.
void onEmitMessage(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  auto* st = reinterpret_cast<ErrorState*>(cinfo->err);
  const bool truncated = cinfo->err->msg_code == JWRN_JPEG_EOF;
  if ((truncated && st->failLevel >= kFailTruncated) || st->failLevel >= kFailWarning) {
    (*cinfo->err->format_message)(cinfo, st->message);
    longjmp(st->jump, 1);
  }
  cinfo->err->num_warnings++;
}

void noOutput(j_common_ptr) {}

// Where a decode leaves its result. Owned by the caller so nothing with a
// destructor lives in the frame that longjmp returns to.
struct Decoded {
  std::vector<uint8_t> rgb;  // height * width * 3
  std::vector<uint8_t> row;  // one scanline of CMYK
  int width = 0;
  int height = 0;
  std::string error;
};

// PIL's CMYK -> RGB: each channel is (255 - k) - c * (255 - k) / 255, the
// product rounded the way PIL's MULDIV255 does.
inline uint8_t cmykChannel(int c, int nk) {
  int t = c * nk + 128;
  int m = ((t >> 8) + t) >> 8;
  int v = nk - m;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// Largest image decoded, in pixels: sharp's default limitInputPixels (0x3FFF squared).
constexpr double kMaxPixels = 268402689.0;

// Returns false with out->error set on failure. No C++ objects are created in
// this frame after setjmp.
bool decodeJpeg(const uint8_t* data, size_t size, int failLevel, Decoded* out) {
  jpeg_decompress_struct cinfo;
  ErrorState err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = onErrorExit;
  err.mgr.emit_message = onEmitMessage;
  err.mgr.output_message = noOutput;
  err.failLevel = failLevel;
  err.message[0] = '\0';
  if (setjmp(err.jump)) {
    out->error = err.message;
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
  jpeg_read_header(&cinfo, TRUE);
  // A small file may declare a huge image: refuse before allocating it (sharp's default limit).
  if (static_cast<double>(cinfo.image_width) * cinfo.image_height > kMaxPixels) {
    out->error = "the image is " + std::to_string(cinfo.image_width) + "x" + std::to_string(cinfo.image_height) +
                 " pixels, more than the limit of " + std::to_string(kMaxPixels);
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  const int w = static_cast<int>(cinfo.output_width);
  const int h = static_cast<int>(cinfo.output_height);
  out->width = w;
  out->height = h;
  out->rgb.resize(static_cast<size_t>(w) * h * 3);
  if (cmyk) out->row.resize(static_cast<size_t>(w) * 4);
  while (cinfo.output_scanline < cinfo.output_height) {
    const int y = static_cast<int>(cinfo.output_scanline);
    uint8_t* dst = out->rgb.data() + static_cast<size_t>(y) * w * 3;
    if (!cmyk) {
      JSAMPROW rows[1] = {dst};
      jpeg_read_scanlines(&cinfo, rows, 1);
      continue;
    }
    JSAMPROW rows[1] = {out->row.data()};
    jpeg_read_scanlines(&cinfo, rows, 1);
    const uint8_t* s = out->row.data();
    for (int x = 0; x < w; x++, s += 4, dst += 3) {
      // PIL reads JPEG CMYK as Adobe's inverted CMYK ("CMYK;I").
      const int nk = s[3];  // 255 - (255 - s[3])
      dst[0] = cmykChannel(255 - s[0], nk);
      dst[1] = cmykChannel(255 - s[1], nk);
      dst[2] = cmykChannel(255 - s[2], nk);
    }
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

constexpr int kPrecisionBits = 32 - 8 - 2;

inline uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

inline double triangle(double x) {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

// The taps of one resampling direction: for output i, inputs first[i] ..
// first[i] + count[i] - 1 with integer weights weights[i * ksize + j].
struct Taps {
  int ksize = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<int32_t> weights;
};

Taps makeTaps(int inSize, int outSize) {
  Taps t;
  const double scale = static_cast<double>(inSize) / outSize;
  const double filterScale = scale < 1 ? 1 : scale;
  const double support = 1.0 * filterScale;
  t.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  t.first.resize(outSize);
  t.count.resize(outSize);
  t.weights.assign(static_cast<size_t>(outSize) * t.ksize, 0);
  std::vector<double> w(t.ksize);
  const double inv = 1.0 / filterScale;
  for (int i = 0; i < outSize; i++) {
    const double centre = (i + 0.5) * scale;
    int lo = static_cast<int>(centre - support + 0.5);
    if (lo < 0) lo = 0;
    int hi = static_cast<int>(centre + support + 0.5);
    if (hi > inSize) hi = inSize;
    const int n = hi - lo;
    double sum = 0;
    for (int j = 0; j < n; j++) {
      w[j] = triangle((j + lo - centre + 0.5) * inv);
      sum += w[j];
    }
    int32_t* k = t.weights.data() + static_cast<size_t>(i) * t.ksize;
    for (int j = 0; j < n; j++) {
      const double v = sum != 0 ? w[j] / sum : w[j];
      const double f = v * (1 << kPrecisionBits);
      k[j] = static_cast<int32_t>(v < 0 ? f - 0.5 : f + 0.5);
    }
    t.first[i] = lo;
    t.count[i] = n;
  }
  return t;
}

struct Job {
  int left, top, width, height, outWidth, outHeight;
  bool flip;
  int failLevel;
};

// Crops `job`'s box from the decoded image and resamples it into `out`
// (outHeight * outWidth * 3), mirrored when asked.
void cropResize(const Decoded& img, const Job& job, uint8_t* out) {
  const int W = img.width;
  const uint8_t* base = img.rgb.data() + (static_cast<size_t>(job.top) * W + job.left) * 3;
  const size_t stride = static_cast<size_t>(W) * 3;
  const bool horizontal = job.outWidth != job.width;
  const bool vertical = job.outHeight != job.height;

  // Horizontal pass into `mid` (rows of the box that the vertical pass reads), or the box itself.
  std::vector<uint8_t> mid;
  const uint8_t* hsrc = base;
  size_t hstride = stride;
  int rowOffset = 0;  // box row held in hsrc's row 0
  Taps vt;
  if (vertical) vt = makeTaps(job.height, job.outHeight);
  if (horizontal) {
    int rowLo = 0, rowHi = job.height;
    if (vertical) {
      rowLo = vt.first[0];
      rowHi = vt.first[job.outHeight - 1] + vt.count[job.outHeight - 1];
    }
    Taps ht = makeTaps(job.width, job.outWidth);
    const int rows = rowHi - rowLo;
    mid.resize(static_cast<size_t>(rows) * job.outWidth * 3);
    for (int y = 0; y < rows; y++) {
      const uint8_t* src = base + static_cast<size_t>(y + rowLo) * stride;
      uint8_t* dst = mid.data() + static_cast<size_t>(y) * job.outWidth * 3;
      for (int x = 0; x < job.outWidth; x++) {
        const int32_t* k = ht.weights.data() + static_cast<size_t>(x) * ht.ksize;
        const uint8_t* s = src + ht.first[x] * 3;
        int32_t r = 1 << (kPrecisionBits - 1), g = r, b = r;
        for (int j = 0, n = ht.count[x]; j < n; j++, s += 3) {
          r += s[0] * k[j];
          g += s[1] * k[j];
          b += s[2] * k[j];
        }
        dst[x * 3] = clip8(r);
        dst[x * 3 + 1] = clip8(g);
        dst[x * 3 + 2] = clip8(b);
      }
    }
    hsrc = mid.data();
    hstride = static_cast<size_t>(job.outWidth) * 3;
    rowOffset = rowLo;
  }

  const size_t outRow = static_cast<size_t>(job.outWidth) * 3;
  const size_t rowBytes = outRow;
  for (int y = 0; y < job.outHeight; y++) {
    uint8_t* dst = out + static_cast<size_t>(y) * outRow;
    if (vertical) {
      const int32_t* k = vt.weights.data() + static_cast<size_t>(y) * vt.ksize;
      const int lo = vt.first[y] - rowOffset;
      const int n = vt.count[y];
      for (size_t c = 0; c < rowBytes; c++) {
        const uint8_t* s = hsrc + static_cast<size_t>(lo) * hstride + c;
        int32_t v = 1 << (kPrecisionBits - 1);
        for (int j = 0; j < n; j++, s += hstride) v += *s * k[j];
        dst[c] = clip8(v);
      }
    } else {
      std::memcpy(dst, hsrc + static_cast<size_t>(y - rowOffset) * hstride, rowBytes);
    }
    if (job.flip) {
      for (int a = 0, b = job.outWidth - 1; a < b; a++, b--) {
        for (int c = 0; c < 3; c++) std::swap(dst[a * 3 + c], dst[b * 3 + c]);
      }
    }
  }
}

class DecodeWorker : public Napi::AsyncWorker {
 public:
  DecodeWorker(Napi::Env env, Napi::Object buffer, const uint8_t* data, size_t size, Job job)
      : Napi::AsyncWorker(env, "advml.jpegDecodeCrop"), deferred_(Napi::Promise::Deferred::New(env)), data_(data), size_(size), job_(job) {
    keep_ = Napi::Persistent(buffer);
  }

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute() override {
    // An exception must not leave a thread-pool thread (std::terminate): out of memory becomes a rejection.
    try {
      run();
    } catch (const std::exception& e) {
      SetError(std::string("jpegDecodeCrop: ") + e.what());
    }
  }

  void run() {
    Decoded img;
    if (!decodeJpeg(data_, size_, job_.failLevel, &img)) {
      SetError("JPEG decoder: " + (img.error.empty() ? std::string("unknown libjpeg error") : img.error));
      return;
    }
    if (job_.left < 0 || job_.top < 0 || job_.left + job_.width > img.width || job_.top + job_.height > img.height) {
      SetError("jpegDecodeCrop: the box " + std::to_string(job_.width) + "x" + std::to_string(job_.height) + " at (" + std::to_string(job_.left) +
               ", " + std::to_string(job_.top) + ") is not inside the " + std::to_string(img.width) + "x" + std::to_string(img.height) + " image");
      return;
    }
    result_.resize(static_cast<size_t>(job_.outWidth) * job_.outHeight * 3);
    cropResize(img, job_, result_.data());
  }

  void OnOK() override {
    Napi::Env env = Env();
    deferred_.Resolve(Napi::Buffer<uint8_t>::Copy(env, result_.data(), result_.size()));
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference keep_;
  const uint8_t* data_;
  size_t size_;
  Job job_;
  std::vector<uint8_t> result_;
};

int intField(const Napi::Object& o, const char* name, int lo) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throw ArgError(std::string("argument 1.") + name + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo) || d != std::floor(d) || d > 1 << 30) {
    throw ArgError(std::string("argument 1.") + name + " must be an integer >= " + std::to_string(lo) + ", got " + std::to_string(d));
  }
  return static_cast<int>(d);
}

Napi::Value jpegDecodeCrop(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsTypedArray()) throw ArgError("argument 0 must be a Uint8Array or Buffer of JPEG bytes");
  Napi::TypedArray ta = info[0].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_uint8_array) throw ArgError("argument 0 must be a Uint8Array or Buffer of JPEG bytes");
  if (info.Length() < 2 || !info[1].IsObject()) throw ArgError("argument 1 must be {left, top, width, height, outWidth, outHeight, flip?, failOn?}");
  Napi::Object o = info[1].As<Napi::Object>();
  Job job;
  job.left = intField(o, "left", 0);
  job.top = intField(o, "top", 0);
  job.width = intField(o, "width", 1);
  job.height = intField(o, "height", 1);
  job.outWidth = intField(o, "outWidth", 1);
  job.outHeight = intField(o, "outHeight", 1);
  Napi::Value flip = o.Get("flip");
  job.flip = flip.IsBoolean() && flip.As<Napi::Boolean>().Value();
  job.failLevel = kFailError;
  Napi::Value fo = o.Get("failOn");
  if (fo.IsString()) {
    const std::string s = fo.As<Napi::String>().Utf8Value();
    if (s == "none") job.failLevel = kFailNone;
    else if (s == "truncated") job.failLevel = kFailTruncated;
    else if (s == "error") job.failLevel = kFailError;
    else if (s == "warning") job.failLevel = kFailWarning;
    else throw ArgError("argument 1.failOn must be 'none', 'truncated', 'error' or 'warning', got '" + s + "'");
  }
  Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
  auto* worker = new DecodeWorker(info.Env(), bytes, bytes.Data(), bytes.ByteLength(), job);
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

}  // namespace

void initJpeg(Napi::Env env, Napi::Object exports) { defineOp(env, exports, "jpegDecodeCrop", jpegDecodeCrop); }

}  // namespace advml
