/* mf_msg_meta: the per-message record every backend fills and the filesystem names files from. */
#include "msg.h"

mf_msg_meta *mf_msg_meta_new(void)
{
	mf_msg_meta *m = g_new0(mf_msg_meta, 1);

	m->internaldate = MF_NO_DATE;
	m->date = MF_NO_DATE;
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
