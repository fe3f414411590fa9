/* Destructors for the plain data types of backend.h. */
#include "backend.h"

void mf_folder_free(mf_folder *f)
{
	if (!f)
		return;
	g_free(f->path);
	g_free(f->raw);
	g_free(f);
}

void mf_listing_free(mf_listing *l)
{
	if (!l)
		return;
	if (l->msgs) {
		/* The array owns its metas whether or not its creator gave it a free function. */
		g_ptr_array_set_free_func(l->msgs, (GDestroyNotify)mf_msg_meta_unref);
		g_ptr_array_unref(l->msgs);
	}
	g_free(l);
}
