/* Reading message bytes: the body cache, lazy partial fetches for big messages, whole fetches
 * for small ones, read-ahead across the files of a folder, and the guarantee that a reader
 * never gets silently short or padded data when the server's size was wrong. FUSE-agnostic. */
#pragma once
#include <glib.h>
#include "model.h"
#include "bodycache.h"

typedef struct mf_reader mf_reader;

mf_reader *mf_reader_new(mf_model *m, mf_bodycache *cache, mf_stats *stats);
void mf_reader_free(mf_reader *r);

/* Bytes [off, off+size) of a message, clipped at its size. If the server's bytes disagree with
 * the size already shown, the size is corrected (the kernel is told) and MF_ERR_SIZE_MISMATCH
 * is returned, so the reader sees an error instead of wrong data. */
GBytes *mf_reader_read(mf_reader *r, mf_node *msg, guint64 off, guint64 size, GError **err);

/* For folders whose server gives wrong sizes: make the shown size exact (a 2-byte tail probe,
 * or a whole fetch when the probe disagrees). */
gboolean mf_reader_verify_size(mf_reader *r, mf_node *msg, GError **err);

/* Open-file bookkeeping: partial state of a big message is dropped when its last handle closes. */
void mf_reader_opened(mf_reader *r, mf_node *msg);
void mf_reader_released(mf_reader *r, mf_node *msg);
