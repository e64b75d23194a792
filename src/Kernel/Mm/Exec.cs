using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Mm;

/// <summary>execve's address-space switch: exec_mmap (fs/exec.c).</summary>
public static class Exec
{
    /// <summary>
    /// exec_mmap: the task switches to <paramref name="fresh"/> (a new mm with no mapping yet: the new program's
    /// mmaps follow), its CPU's TLB keeps nothing of the old one (switch_mm), and the old mm is released — exit_mmap
    /// through the munmap path — when <paramref name="lastUser"/> (no other task runs in it: de_thread has ended the
    /// process's other threads, and a forked child has an mm of its own).
    /// </summary>
    public static async ValueTask ExecMmap(EmuTask t, MmStruct fresh, bool lastUser)
    {
        var m = t.Machine;
        var old = t.Mm;
        await t.Delay(m.Cost.SyscallNs);
        t.Mm = fresh;
        t.AddressSpace = fresh.LocalPort;
        t.Tlb?.InvalidateRange(0, long.MaxValue);
        if (old != null && lastUser)
            await Fork.ExitMmap(t, old);
    }
}
