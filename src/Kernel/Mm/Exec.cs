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
        SwitchMm(t, fresh);
        if (old != null && lastUser)
            await Fork.ExitMmap(t, old);
    }

    /// <summary>
    /// switch_mm: the task runs in <paramref name="mm"/> from now on, and its CPU's TLB keeps no translation of the mm
    /// it ran in before (the software TLB is not tagged by address space). No-op when it already runs there.
    /// </summary>
    public static void SwitchMm(EmuTask t, MmStruct mm)
    {
        if (t.Mm == mm)
            return;
        t.Mm = mm;
        t.AddressSpace = mm.LocalPort;
        t.Tlb?.InvalidateRange(0, long.MaxValue);
    }
}
