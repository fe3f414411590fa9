/* Field-by-field equality of two decoded FETCH responses, for the checks that the direct
 * decoder (imap_fetch_direct.c) agrees with the value tree. */
#pragma once
#include <string.h>
#include "imap_parse.h"

static inline gboolean fetch_eq_bytes(GBytes *a, GBytes *b)
{
	return (!a && !b) || (a && b && g_bytes_equal(a, b));
}

static inline gboolean fetch_eq_addresses(const imap_address_list *a, const imap_address_list *b)
{
	if (!a || !b || a->len != b->len)
		return a == b;
	for (guint i = 0; i < a->len; i++) {
		const imap_address *x = &a->items[i], *y = &b->items[i];

		if (g_strcmp0(x->name, y->name) || g_strcmp0(x->mailbox, y->mailbox) ||
		    g_strcmp0(x->host, y->host))
			return FALSE;
	}
	return TRUE;
}

static inline gboolean fetch_eq_envelope(const imap_envelope *a, const imap_envelope *b)
{
	if (!a || !b)
		return a == b;
	return !g_strcmp0(a->date, b->date) && !g_strcmp0(a->subject, b->subject) &&
	       !g_strcmp0(a->message_id, b->message_id) && fetch_eq_addresses(a->from, b->from) &&
	       fetch_eq_addresses(a->to, b->to);
}

static inline gboolean fetch_equal(const imap_fetch *a, const imap_fetch *b)
{
	return a->seq == b->seq && a->has_uid == b->has_uid && (!a->has_uid || a->uid == b->uid) &&
	       a->has_flags == b->has_flags && !g_strcmp0(a->flags, b->flags) &&
	       a->has_internaldate == b->has_internaldate &&
	       (!a->has_internaldate || a->internaldate == b->internaldate) &&
	       a->has_size == b->has_size && (!a->has_size || a->rfc822_size == b->rfc822_size) &&
	       fetch_eq_envelope(a->envelope, b->envelope) && fetch_eq_bytes(a->body, b->body) &&
	       a->body_origin == b->body_origin && a->body_partial == b->body_partial &&
	       fetch_eq_bytes(a->header, b->header);
}
