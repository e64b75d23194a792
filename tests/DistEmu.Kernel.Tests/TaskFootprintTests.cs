using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>
/// Under orleans every VMA and mm grain makes a task for each CPU that calls it; a 1024-CPU machine must not pay a
/// software TLB per caller in each of them. A task takes its CPU's TLB on its first access, and it is the CPU's.
/// </summary>
public class TaskFootprintTests
{
    [Fact]
    public void Tasks_that_never_access_memory_allocate_no_tlb_and_one_that_does_uses_its_cpus()
    {
        var spec = new MachineSpec { Nodes = 16, CpusPerNode = 64, MemoryPerNodeBytes = 1L << 30, Distance = MachineSpec.UniformDistance(16) };
        var m = new EmuMachine(spec, sanitizer: true, ownsFrames: false);
        var engine = new SimEngine(1);
        _ = new EmuTask(m, 0, "warm", 0, 0, engine); // JIT and first-use allocations out of the count

        long before = GC.GetAllocatedBytesForCurrentThread();
        var tasks = Enumerable.Range(0, 1024).Select(c => new EmuTask(m, c, $"cpu{c}", c, spec.NodeOfCpu(c), engine)).ToList();
        long perTask = (GC.GetAllocatedBytesForCurrentThread() - before) / tasks.Count;
        // A software TLB is 2 × 512 entries of 8 bytes: a task that took one would cost more than 8 KiB.
        Assert.True(perTask < 2048, $"{perTask} bytes per task");

        Assert.Same(m.Tlb(5), tasks[5].Tlb); // the CPU's own, taken on first use: shootdowns reach it
        m.Tlb(5).Fill(42, 7);
        Assert.Equal(7, tasks[5].Tlb!.Lookup(42));
    }
}
