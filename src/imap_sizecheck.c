/* The size check (see imap_sizecheck.h): pick three messages by sequence number, learn their
 * UIDs and sizes, then ask for the last octet of each, pipelined. */
#include <string.h>

#include "imap_parse.h"
#include "imap_sizecheck.h"
#include "log.h"

#define PICKS 3

typedef struct {
	GPtrArray *picks;   /* mf_msg_meta* with uid, id and size */
	gssize tail[PICKS]; /* octets answered, -1 for none */
} SizeProbe;

static imap_fetch *fetch_of(const imap_response *r)
{
	return r->args && !strcmp(r->keyword, "FETCH") ? imap_fetch_from_response(r, NULL) : NULL;
}

static gint pick_index(const SizeProbe *p, guint32 uid)
{
	for (guint i = 0; i < p->picks->len; i++)
		if (((mf_msg_meta *)p->picks->pdata[i])->uid == uid)
			return (gint)i;
	return -1;
}

static void on_size(const imap_response *r, gpointer ud)
{
	SizeProbe *p = ud;
	g_autoptr(imap_fetch) f = fetch_of(r);

	if (!f || !f->has_uid || !f->has_size || p->picks->len >= PICKS ||
	    pick_index(p, f->uid) >= 0)
		return;
	mf_msg_meta *m = mf_msg_meta_new();

	m->uid = f->uid;
	m->id = g_strdup_printf("%u", f->uid);
	m->size = f->rfc822_size;
	g_ptr_array_add(p->picks, m);
}

static void on_tail(const imap_response *r, gpointer ud)
{
	SizeProbe *p = ud;
	g_autoptr(imap_fetch) f = fetch_of(r);
	gint i = f && f->has_uid && f->body ? pick_index(p, f->uid) : -1;

	if (i >= 0)
		p->tail[i] = (gssize)g_bytes_get_size(f->body);
}

gboolean mf_imap_check_sizes(mf_imap_conn *c, const char *mailbox, mf_stats *stats,
			     mf_msg_meta **wrong, GError **err)
{
	*wrong = NULL;
	const char *sel = mf_imap_conn_selected(c);

	/* With CONDSTORE when offered, so that a listing can go on from this selection. */
	if ((!sel || strcmp(sel, mailbox) != 0) &&
	    !mf_imap_conn_examine_since(c, mailbox, 0, 0, NULL, NULL, err))
		return FALSE;
	guint32 exists = mf_imap_conn_exists(c);

	if (exists == 0)
		return TRUE;
	SizeProbe p = { .picks = g_ptr_array_new_with_free_func((GDestroyNotify)mf_msg_meta_unref),
			.tail = { -1, -1, -1 } };
	g_autofree char *args = exists > 2 ?
		g_strdup_printf("1,%u,%u (UID RFC822.SIZE)", exists / 2 + 1, exists) :
		g_strdup_printf("1:%u (UID RFC822.SIZE)", exists);
	g_autoptr(GError) e = NULL;
	gboolean ok = mf_imap_conn_run(c, MF_IMAP_FETCH, args, on_size, &p, &e);

	if (ok) {
		g_autoptr(mf_imap_batch) batch = mf_imap_batch_new(c);
		guint n = 0;

		for (guint i = 0; i < p.picks->len; i++) {
			const mf_msg_meta *m = p.picks->pdata[i];

			/* Size 0 is verified before it is shown anyway; offsets are 32-bit. */
			if (m->size == 0 || m->size - 1 > G_MAXUINT32)
				continue;
			g_autofree char *probe = g_strdup_printf("%u (UID BODY.PEEK[]<%" G_GUINT64_FORMAT
								 ".2>)", m->uid, m->size - 1);

			mf_imap_batch_add(batch, MF_IMAP_UID_FETCH, probe, on_tail, &p);
			mf_stats_body_partial(stats);
			n++;
		}
		if (n)
			ok = mf_imap_batch_run(batch, &e);
	}
	if (!ok && mf_imap_conn_is_dead(c)) {
		g_ptr_array_unref(p.picks);
		g_propagate_error(err, g_steal_pointer(&e));
		return FALSE;
	}
	if (!ok)
		mf_log_debug("%s: size probes refused: %s", mailbox, e->message);
	for (guint i = 0; i < p.picks->len && !*wrong; i++)
		if (p.tail[i] >= 0 && p.tail[i] != 1)
			*wrong = mf_msg_meta_copy(p.picks->pdata[i]);
	g_ptr_array_unref(p.picks);
	return TRUE;
}
