/* mf_msg_meta: the per-message record every backend fills and the filesystem names files from. */
#include "msg.h"

#include <string.h>

mf_msg_meta *mf_msg_meta_new(void)
{
	mf_msg_meta *m = g_new0(mf_msg_meta, 1);

	m->internaldate = MF_NO_DATE;
	m->date = MF_NO_DATE;
	g_atomic_ref_count_init(&m->ref);
	return m;
}

mf_msg_meta *mf_msg_meta_new_packed(const char *const strings[MF_META_N_STRINGS])
{
	gsize len[MF_META_N_STRINGS], total = 0;

	for (guint i = 0; i < MF_META_N_STRINGS; i++) {
		len[i] = strings[i] ? strlen(strings[i]) + 1 : 0;
		total += len[i];
	}
	mf_msg_meta *m = g_malloc0(sizeof(*m) + total);
	char **field[MF_META_N_STRINGS] = {
		[MF_META_ID] = &m->id,		   [MF_META_DATE_RAW] = &m->date_raw,
		[MF_META_FROM] = &m->from,	   [MF_META_FROM_NAME] = &m->from_name,
		[MF_META_TO] = &m->to,		   [MF_META_SUBJECT] = &m->subject,
		[MF_META_MESSAGE_ID] = &m->message_id, [MF_META_FLAGS] = &m->flags,
	};
	char *p = (char *)(m + 1);

	for (guint i = 0; i < MF_META_N_STRINGS; i++) {
		if (!strings[i])
			continue;
		memcpy(p, strings[i], len[i]);
		*field[i] = p;
		p += len[i];
	}
	m->internaldate = MF_NO_DATE;
	m->date = MF_NO_DATE;
	m->packed = TRUE;
	g_atomic_ref_count_init(&m->ref);
	return m;
}

mf_msg_meta *mf_msg_meta_ref(mf_msg_meta *m)
{
	g_atomic_ref_count_inc(&m->ref);
	return m;
}

void mf_msg_meta_unref(mf_msg_meta *m)
{
	if (!m || !g_atomic_ref_count_dec(&m->ref))
		return;
	if (m->packed) {
		g_free(m);
		return;
	}
	g_free(m->id);
	g_free(m->date_raw);
	g_free(m->from);
	g_free(m->from_name);
	g_free(m->to);
	g_free(m->subject);
	g_free(m->message_id);
	g_free(m->flags);
	g_free(m);
}

mf_msg_meta *mf_msg_meta_copy(const mf_msg_meta *m)
{
	mf_msg_meta *c;

	if (!m)
		return NULL;
	c = g_memdup2(m, sizeof(*m));
	g_atomic_ref_count_init(&c->ref);
	c->packed = FALSE;
	c->id = g_strdup(m->id);
	c->date_raw = g_strdup(m->date_raw);
	c->from = g_strdup(m->from);
	c->from_name = g_strdup(m->from_name);
	c->to = g_strdup(m->to);
	c->subject = g_strdup(m->subject);
	c->message_id = g_strdup(m->message_id);
	c->flags = g_strdup(m->flags);
	return c;
}
