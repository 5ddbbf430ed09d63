/*
 * _dl_find_object for the mipsel build.
 *
 * Debian's cross libgcc_eh (used as libunwind.a, see board/build.sh) was built against
 * glibc >= 2.35 and looks up a PC's unwind tables with glibc's _dl_find_object, which
 * musl lacks. The release binary never unwinds (panic = "abort"), so "not found" is
 * enough to link. Measured under qemu-mipsel: with this, a panicking unit test aborts the
 * test binary (SIGABRT, so the run still fails); an implementation over dl_iterate_phdr that
 * did return the tables crashed (SIGSEGV) inside the hard-float libgcc_eh instead, and
 * under -cpu 24Kc (no FPU) the unwinder's FPU register saves are SIGILL anyway.
 */
struct dl_find_object;

int _dl_find_object(void *pc, struct dl_find_object *result)
{
	(void)pc;
	(void)result;
	return -1;
}
