/* Inert stand-ins for the libudev calls of Debian's static libhwloc.a, which
 * libudev (shared only) cannot satisfy in a static link. udev_new returning
 * NULL makes hwloc skip udev lookups (it only uses udev to name OS devices),
 * which kt does not need. Linked only into static tools. */
#include <stddef.h>
struct udev;
struct udev_device;
struct udev *udev_new(void) { return NULL; }
struct udev *udev_unref(struct udev *u) { (void)u; return NULL; }
struct udev_device *udev_device_new_from_subsystem_sysname(struct udev *u, const char *s, const char *n) { (void)u; (void)s; (void)n; return NULL; }
struct udev_device *udev_device_unref(struct udev_device *d) { (void)d; return NULL; }
const char *udev_device_get_property_value(struct udev_device *d, const char *k) { (void)d; (void)k; return NULL; }
