using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>Small machines and scripted scenarios for the protocol tests.</summary>
internal static class TestMachines
{
    public const long Page = 4096;
    /// <summary>2 MiB-aligned areas, so a 512-page VMA owns exactly one page-table page.</summary>
    public const long AreaA = 0x7f00_0000_0000;
    public const long AreaB = 0x7f00_4000_0000;

    /// <summary>
    /// A small machine. <paramref name="thp"/> defaults to never: the protocol tests pin 4 KiB-page rules (one fault, one
    /// folio, one migration entry per page) on 2 MiB-aligned areas that a THP=always kernel would map with THPs; the
    /// THP rules (ThpRuleTests) ask for always.
    /// </summary>
    public static MachineSpec Spec(FaultPolicy policy, int nodes = 2, int cpusPerNode = 2, CostModel? cost = null, TransparentHugepage thp = TransparentHugepage.Never) => new()
    {
        Thp = thp,
        Nodes = nodes,
        CpusPerNode = cpusPerNode,
        MemoryPerNodeBytes = 256L << 20,
        Distance = MachineSpec.UniformDistance(nodes),
        Policy = policy,
        Cost = cost ?? CostModel.Default,
    };

    public static string Describe(SimHarness h) =>
        string.Join("\n", h.Violations.Select(v => v.ToString())) + (h.Stalled.Count > 0 ? "\nstalled: " + string.Join("; ", h.Stalled) : "");

    public static void AssertClean(SimHarness h) =>
        Assert.True(h.Violations.Count == 0, "sanitizer reported:\n" + Describe(h));
}

/// <summary>
/// The LKML case, scripted: cpu0 maps and populates VMA A (one page-table page) and VMA B; the migrator (cpu3)
/// moves one page of A to node 1 with a slow copy; cpu1 faults on that page meanwhile; the writer (cpu2) munmaps B
/// (another VMA) or A (the same VMA) — or runs another writer given to it. Records when the migration ended and
/// when the writer returned, in emulated ns.
/// </summary>
internal sealed class LkmlScenario
{
    public const long MigrateAt = 20_000, FaultAt = 30_000, MunmapAt = 40_000;
    public long MigrationEnd, MunmapEnd, MunmapWriterWait, FaultEnd;
    public SimHarness H { get; }

    public LkmlScenario(FaultPolicy policy, bool sameVma, long faulterDelayAfterUnlock = 0)
        : this(policy, (t, mm) =>
        {
            long start = sameVma ? TestMachines.AreaA : TestMachines.AreaB;
            return Munmap.DoMunmap(t, mm, start, start + 512 * TestMachines.Page);
        }, faulterDelayAfterUnlock)
    {
    }

    /// <param name="writer">What cpu2 runs at <see cref="MunmapAt"/>; returns its writer wait.</param>
    /// <param name="bugs">Historical bugs to switch in before the run.</param>
    public LkmlScenario(FaultPolicy policy, Func<EmuTask, MmStruct, ValueTask<long>> writer, long faulterDelayAfterUnlock = 0, Action<EmuMachine>? bugs = null)
    {
        H = new SimHarness(TestMachines.Spec(policy));
        bugs?.Invoke(H.Machine);
        var mm = H.Machine.CreateMm();
        var setup = H.NewTask(0, mm);
        var faulter = H.NewTask(1, mm);
        var writerTask = H.NewTask(2, mm);
        var migrator = H.NewTask(3, mm);
        // The migrator is held up for 150 µs between unmapping and copying (a long copy, or preemption), so the folio
        // stays locked while everything else happens.
        H.Engine.ScriptedDelays[(migrator.Id, PreemptSite.MigrateBeforeCopy)] = 150_000;
        if (faulterDelayAfterUnlock > 0)
            H.Engine.ScriptedDelays[(faulter.Id, PreemptSite.UnlockToPteMapLock)] = faulterDelayAfterUnlock;
        long target = TestMachines.AreaA + 7 * TestMachines.Page;
        H.Spawn(setup, 0, async t =>
        {
            await Mmap.DoMmap(t, mm, TestMachines.AreaA, 512 * TestMachines.Page, VmFlags.Read | VmFlags.Write);
            await Mmap.DoMmap(t, mm, TestMachines.AreaB, 512 * TestMachines.Page, VmFlags.Read | VmFlags.Write);
            for (int i = 0; i < 16; i++)
                await Cpu.CpuAccess.Access(t, TestMachines.AreaA + i * TestMachines.Page, write: true);
            await Cpu.CpuAccess.Access(t, TestMachines.AreaB, write: true);
        });
        H.Spawn(migrator, MigrateAt, async t =>
        {
            await Migration.MovePages.MigrateRange(t, mm, target, target + TestMachines.Page, node: 1);
            MigrationEnd = t.Clock;
        });
        H.Spawn(faulter, FaultAt, async t =>
        {
            await Cpu.CpuAccess.Access(t, target, write: true);
            FaultEnd = t.Clock;
        });
        H.Spawn(writerTask, MunmapAt, async t =>
        {
            MunmapWriterWait = await writer(t, mm);
            MunmapEnd = t.Clock;
        });
        H.Run();
        H.CloseFrameAccounting();
    }

    public bool MunmapWaitedForMigration => MunmapEnd > MigrationEnd;
    public string Timeline => $"migration ended {MigrationEnd} ns, the writer returned {MunmapEnd} ns (waited {MunmapWriterWait} ns), fault ended {FaultEnd} ns\n{TestMachines.Describe(H)}";
}
