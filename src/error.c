#include "mferror.h"

G_DEFINE_QUARK(mailfs-error-quark, mf_error)
