/* The FUSE side: low-level operations over the model and the reader. Knows nothing of the
 * wire; every error reaches the kernel through one errno mapping (mf_errno). */
#pragma once
#include <fuse_lowlevel.h>
#include <glib.h>
#include "model.h"
#include "reader.h"

typedef struct mf_fs mf_fs;

mf_fs *mf_fs_new(mf_stats *stats, const char *backend_name);
void mf_fs_free(mf_fs *fs);
const struct fuse_lowlevel_ops *mf_fs_ops(void);
/* After mounting (and daemonizing): attach the model and reader and start the thread that
 * delivers kernel notifications. No request is served before this: the loop starts after it. */
void mf_fs_start(mf_fs *fs, struct fuse_session *se, mf_model *m, mf_reader *r);
void mf_fs_stop(mf_fs *fs);

int mf_errno(const GError *e);
