// libcryptsetup (Debian libcryptsetup-dev): host-side creation and key management of the
// LUKS2 images. The core reads images without it.
#include <libcryptsetup.h>
