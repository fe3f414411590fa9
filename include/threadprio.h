/* Background threads (cache and index writers) yield the CPU to the work a user waits for. */
#pragma once

/* Lowers the calling thread's CPU priority to the lowest; best effort, silent on failure. */
void mf_thread_set_background(void);
