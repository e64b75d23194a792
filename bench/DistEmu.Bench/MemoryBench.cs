using System.Diagnostics;
using DistEmu.Kernel.Cpu;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sim;

namespace DistEmu.Bench;

/// <summary>
/// Host memory per touched emulated page: one task on a 1-node, 1-CPU, 8 GiB machine (sanitizer off) maps 4 GiB
/// and writes one byte to each of its 1,048,576 pages through <see cref="CpuAccess.Access"/>; the managed heap is
/// measured (GC.Collect ×2, then GC.GetTotalMemory(true)) after the mmap and before the first touch, and again
/// after the last touch, with the machine still alive.
/// </summary>
public static class MemoryBench
{
    public const long Pages = 1L << 20;
    public const long PageSize = 4096;
    public const long Start = 0x7f00_0000_0000;

    public static int Run()
    {
        var spec = new MachineSpec
        {
            Name = "bench-mem-1x1",
            Nodes = 1,
            CpusPerNode = 1,
            MemoryPerNodeBytes = 8L << 30,
            Distance = MachineSpec.UniformDistance(1),
            Policy = FaultPolicy.Merged,
        };
        var h = new SimHarness(spec, seed: 1, sanitizer: false);
        var mm = h.Machine.CreateMm();
        var task = h.NewTask(0, mm);
        long before = 0, after = 0, touched = 0, failed = 0;
        double touchSeconds = 0;
        h.Spawn(task, 0, async t =>
        {
            await Mmap.DoMmap(t, mm, Start, Pages * PageSize, VmFlags.Read | VmFlags.Write);
            before = Measure();
            var sw = Stopwatch.StartNew();
            for (long i = 0; i < Pages; i++)
            {
                var outcome = await CpuAccess.Access(t, Start + i * PageSize, write: true);
                if (outcome == Kernel.Fault.FaultOutcome.Handled) touched++;
                else failed++;
            }
            touchSeconds = sw.Elapsed.TotalSeconds;
            after = Measure();
        });
        h.Run();
        long afterRun = Measure();

        var m = h.Machine;
        long ptPages = mm.PageTable.PageCount;
        long delta = after - before;
        Console.WriteLine($"memory benchmark: 1 node x 1 CPU, 8 GiB, sanitizer off, one 4 GiB anonymous mapping, {Pages:N0} pages written");
        Console.WriteLine($"touched_ok               {touched:N0}");
        Console.WriteLine($"touch_failed             {failed:N0}");
        Console.WriteLine($"faults (VmStat.Faults)   {m.VmStat.Faults:N0}");
        Console.WriteLine($"page_table_pages         {ptPages:N0}  (512 entries each)");
        Console.WriteLine($"folio_objects            {m.Folios.Count:N0}");
        Console.WriteLine($"frames_free              {m.Frames.Free:N0} of {m.Frames.Total:N0}");
        Console.WriteLine($"touch_host_s             {touchSeconds:F3}");
        Console.WriteLine($"heap_before_bytes        {before:N0}");
        Console.WriteLine($"heap_after_bytes         {after:N0}");
        Console.WriteLine($"heap_after_run_bytes     {afterRun:N0}  (engine drained, machine still alive)");
        Console.WriteLine($"delta_bytes              {delta:N0}");
        Console.WriteLine($"bytes_per_touched_page   {(touched > 0 ? (double)delta / touched : double.NaN):F2}");
        Console.WriteLine($"design_floor_per_page    {8.0:F2}  (8-byte PTE in 512-entry pages; measured page-table share: {(touched > 0 ? ptPages * PtePage.Entries * 8.0 / touched : 0):F2})");
        if (ptPages > 0)
            Console.WriteLine($"other_bytes_per_pt_page  {(delta - ptPages * PtePage.Entries * 8.0) / ptPages:F0}  (delta beyond the PTE payload, per page-table page: array headers, PtePage, its PTL, dictionary slot, ...)");
        GC.KeepAlive(h);
        GC.KeepAlive(mm);
        return failed == 0 && touched == Pages ? 0 : 1;
    }

    private static long Measure()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
