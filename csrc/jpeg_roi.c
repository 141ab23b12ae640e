/* Decode one rectangle of a baseline or progressive JPEG, at 1/1, 1/2, 1/4 or 1/8 scale.
 *
 * What OpenCV, Pillow and simplejpeg lack: they decode every pixel of the image even when a
 * random-resized crop keeps half of it. libjpeg-turbo (>= 1.5) can skip the columns left and
 * right of a region (jpeg_crop_scanline: no IDCT, upsampling or colour conversion there) and the
 * rows above it (jpeg_skip_scanlines), and a decoder may stop after the region's last row.
 * Combined with DCT scaling this decodes only what the crop needs.
 *
 * A plain C function called through ctypes (no Python headers): built by `make jpeg-roi` into
 * resnest_mm/datasets/_jpeg_roi.so against the system libjpeg-turbo (libjpeg62-turbo-dev).
 * Hostile input: every libjpeg error longjmps back here and returns an error code with libjpeg's
 * message; any libjpeg warning (corrupt data it would paper over) returns JROI_FALLBACK so the
 * caller decodes the file the ordinary way, whose policy on such files then applies.
 */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>

#define JROI_OK 0
#define JROI_ERROR 1     /* libjpeg refused the data: message in msg */
#define JROI_PAD 8
#define JROI_FALLBACK 2  /* not for this path (CMYK, warnings, sizes differ): decode in full */
/* Rows asked of libjpeg per call. One at a time makes the h2v2 (4:2:0) upsampler produce its two
 * rows into a spare buffer and copy them out one by one: 16 (an iMCU row of 4:2:0) cut the
 * region decode of the benchmark photos by 5% (centre crops, 2-core EPYC). */
#define JROI_ROWS 16

struct roi_error {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  int warned;
};

static void roi_error_exit(j_common_ptr cinfo) {
  struct roi_error *err = (struct roi_error *)cinfo->err;
  longjmp(err->jump, 1);
}

static void roi_emit_message(j_common_ptr cinfo, int level) {
  if (level < 0) ((struct roi_error *)cinfo->err)->warned = 1;
}

/* Fill out (h rows of w BGR pixels, contiguous) with the region (x, y, w, h) of the image
 * decoded at 1/denom scale; (x, y, w, h) are in scaled pixels. expect_w/expect_h: the scaled
 * size the caller computed from the header; anything else is JROI_FALLBACK. */
int jroi_decode(const unsigned char *data, unsigned long size, int denom, int expect_w,
                int expect_h, int x, int y, int w, int h, unsigned char *out, char *msg,
                int msg_len) {
  struct jpeg_decompress_struct cinfo;
  struct roi_error err;
  JSAMPROW rows[JROI_ROWS];
  unsigned char *block;
  volatile int status = JROI_OK;
  JDIMENSION xoff, cw;
  int line, got, k;

  memset(&cinfo, 0, sizeof(cinfo));
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = roi_error_exit;
  err.pub.emit_message = roi_emit_message;
  err.warned = 0;
  if (setjmp(err.jump)) {
    if (msg && msg_len > 0) {
      char buffer[JMSG_LENGTH_MAX];
      (*cinfo.err->format_message)((j_common_ptr)&cinfo, buffer);
      snprintf(msg, (size_t)msg_len, "%s", buffer);
    }
    jpeg_destroy_decompress(&cinfo);
    return JROI_ERROR;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, size);
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space != JCS_YCbCr && cinfo.jpeg_color_space != JCS_GRAYSCALE &&
      cinfo.jpeg_color_space != JCS_RGB) {
    status = JROI_FALLBACK;  /* CMYK / YCCK: OpenCV converts those */
    goto done;
  }
  cinfo.out_color_space = JCS_EXT_BGR;
  cinfo.scale_num = 1;
  cinfo.scale_denom = (unsigned int)denom;
  jpeg_start_decompress(&cinfo);
  if ((int)cinfo.output_width != expect_w || (int)cinfo.output_height != expect_h ||
      x < 0 || y < 0 || w <= 0 || h <= 0 || x + w > expect_w || y + h > expect_h) {
    status = JROI_FALLBACK;
    goto done;
  }
  /* A column more on the left and a few on the right: at a cropped edge the fancy upsampler
   * replicates the edge's chroma sample, where the full decode interpolates with the next one. */
  xoff = (JDIMENSION)(x > 0 ? x - 1 : 0);
  cw = (JDIMENSION)((x + w + JROI_PAD <= expect_w ? x + w + JROI_PAD : expect_w) - (int)xoff);
  /* moves xoff left to an iMCU boundary and widens cw by as much */
  jpeg_crop_scanline(&cinfo, &xoff, &cw);
  if (y > 0 && jpeg_skip_scanlines(&cinfo, (JDIMENSION)y) != (JDIMENSION)y) {
    status = JROI_FALLBACK;
    goto done;
  }
  block = (unsigned char *)(*cinfo.mem->alloc_large)((j_common_ptr)&cinfo, JPOOL_IMAGE,
                                                    (size_t)cinfo.output_width * 3 * JROI_ROWS);
  for (k = 0; k < JROI_ROWS; k++) rows[k] = block + (size_t)k * cinfo.output_width * 3;
  for (line = 0; line < h; line += got) {
    got = (int)jpeg_read_scanlines(&cinfo, rows,
                                   (JDIMENSION)(h - line < JROI_ROWS ? h - line : JROI_ROWS));
    if (got <= 0) {
      status = JROI_FALLBACK;
      goto done;
    }
    for (k = 0; k < got; k++)
      memcpy(out + (size_t)(line + k) * w * 3, rows[k] + (size_t)(x - (int)xoff) * 3,
             (size_t)w * 3);
  }
  if (err.warned) status = JROI_FALLBACK;
done:
  jpeg_abort_decompress(&cinfo);  /* the rows below the region are never decoded */
  jpeg_destroy_decompress(&cinfo);
  return status;
}
