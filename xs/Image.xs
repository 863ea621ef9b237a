/* Package NativeVNC::Image: an RGB image owned by the Rust core (see NativeVNC/Image.pm for the API). */
#define PERL_NO_GET_CONTEXT
#include "EXTERN.h"
#include "perl.h"
#include "XSUB.h"

#include "glue.h"

MODULE = NativeVNC::Image    PACKAGE = NativeVNC::Image

PROTOTYPES: DISABLE

nv_image *
new(const char *class, UV width, UV height)
  PREINIT:
    nv_error *err = NULL;
  CODE:
    PERL_UNUSED_VAR(class);
    if (width > 65535 || height > 65535)
        croak("NativeVNC::Image->new: %" UVuf "x%" UVuf " is too large", width, height);
    RETVAL = nv_image_new((uint32_t)width, (uint32_t)height, &err);
    if (!RETVAL)
        nvx_croak(aTHX_ err);
  OUTPUT:
    RETVAL

void
DESTROY(SV *self)
  CODE:
    if (SvROK(self)) {
        nv_image_free(INT2PTR(nv_image *, SvIV(SvRV(self))));
        sv_setiv(SvRV(self), 0);
    }

UV
xres(nv_image *img)
  ALIAS:
    yres = 1
  PREINIT:
    uint32_t w = 0, h = 0;
  CODE:
    nv_image_size(img, &w, &h);
    RETVAL = ix ? h : w;
  OUTPUT:
    RETVAL

void
get_pixel(nv_image *img, IV x, IV y)
  PREINIT:
    int64_t px;
  PPCODE:
    if (x < 0 || y < 0 || (px = nv_image_pixel(img, (uint32_t)x, (uint32_t)y)) < 0)
        croak("NativeVNC::Image::get_pixel: %" IVdf ",%" IVdf " lies outside the image", x, y);
    EXTEND(SP, 3);
    mPUSHu((UV)(px & 0xff));
    mPUSHu((UV)((px >> 8) & 0xff));
    mPUSHu((UV)((px >> 16) & 0xff));

void
blit(nv_image *img, UV x, UV y, UV w, UV h, SV *data)
  PREINIT:
    STRLEN len;
    const char *bytes;
  CODE:
    if (x > 65535 || y > 65535 || w > 65535 || h > 65535)
        croak("NativeVNC::Image::blit: rectangle out of range");
    bytes = SvPVbyte(data, len);
    NVX_CHECK(nv_image_blit(img, (uint16_t)x, (uint16_t)y, (uint16_t)w, (uint16_t)h, (const uint8_t *)bytes, len,
                            &nvx_err));

int
write(nv_image *img, const char *path)
  CODE:
    NVX_CHECK(nv_image_write(img, path, &nvx_err));
    RETVAL = 1;
  OUTPUT:
    RETVAL
