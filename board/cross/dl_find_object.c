/*
 * _dl_find_object for static musl binaries.
 *
 * Debian's cross libgcc_eh (used as libunwind.a for the mipsel build) was built against
 * glibc >= 2.35 and finds a PC's unwind tables with glibc's _dl_find_object, which musl
 * lacks. This gives the same answer from dl_iterate_phdr (which musl has): the loaded
 * object containing the PC and its PT_GNU_EH_FRAME. With it, a panicking unit test
 * unwinds and is reported as a failure instead of aborting the whole test binary.
 * Layout of struct dl_find_object as glibc defines it for targets without
 * DLFO_STRUCT_HAS_EH_DBASE / DLFO_STRUCT_HAS_EH_COUNT (mips among them).
 */
#define _GNU_SOURCE
#include <link.h>
#include <stddef.h>
#include <stdint.h>

struct dl_find_object {
	unsigned long long dlfo_flags;
	void *dlfo_map_start;
	void *dlfo_map_end;
	void *dlfo_link_map;
	void *dlfo_eh_frame;
	unsigned long long dlfo_reserved[7];
};

struct search {
	uintptr_t pc;
	struct dl_find_object *out;
};

static int visit(struct dl_phdr_info *info, size_t size, void *data)
{
	struct search *s = data;
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	void *eh = NULL;
	int inside = 0;
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *p = &info->dlpi_phdr[i];
		uintptr_t start = info->dlpi_addr + p->p_vaddr;
		if (p->p_type == PT_LOAD) {
			if (start < lo)
				lo = start;
			if (start + p->p_memsz > hi)
				hi = start + p->p_memsz;
			if (s->pc >= start && s->pc < start + p->p_memsz)
				inside = 1;
		} else if (p->p_type == PT_GNU_EH_FRAME) {
			eh = (void *)start;
		}
	}
	if (!inside)
		return 0;
	s->out->dlfo_flags = 0;
	s->out->dlfo_map_start = (void *)lo;
	s->out->dlfo_map_end = (void *)hi;
	s->out->dlfo_link_map = NULL;
	s->out->dlfo_eh_frame = eh;
	return 1;
}

int _dl_find_object(void *pc, struct dl_find_object *result)
{
	struct search s = { (uintptr_t)pc, result };
	return dl_iterate_phdr(visit, &s) ? 0 : -1;
}
