using DistEmu.Kernel.Cpu;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sim;
using Xunit.Abstractions;

namespace DistEmu.Kernel.Tests;

/// <summary>
/// The emulator's storage of a page-table page (PteStore): sparse list below SparseMax entries, the 512-entry array
/// past it. Storage must never change what an entry reads as, what Used counts, or the PTL/free semantics.
/// </summary>
public class PageTableStorageTests(ITestOutputHelper output)
{
    private const long P = TestMachines.Page;
    private const VmFlags RW = VmFlags.Read | VmFlags.Write;

    [Fact]
    public void PteStore_reads_back_what_was_set_in_both_forms_against_a_plain_array()
    {
        var rng = new Random(7);
        var reference = new long[PteStore.Entries];
        var store = PteStore.Empty;
        int conversions = 0, backToSparse = 0;
        bool wasDense = false;
        for (int step = 0; step < 20_000; step++)
        {
            // Phases of 5,000 steps: fill up (crosses into dense), then only clear (drains back to empty), twice.
            bool filling = step / 5_000 % 2 == 0;
            int i = rng.Next(PteStore.Entries);
            long value = filling && rng.Next(100) < 85
                ? Pte.Present(rng.NextInt64(1, 1L << 40), writable: rng.Next(2) == 0)
                : Pte.None;
            reference[i] = value;
            store.Set(i, value);
            if (store.IsDense && !wasDense) conversions++;
            if (!store.IsDense && wasDense) backToSparse++;
            wasDense = store.IsDense;

            int used = reference.Count(v => v != Pte.None);
            if (store.Used != used || store.Get(i) != value)
                Assert.Fail($"step {step}: set pte[{i}] = {Pte.Describe(value)}; reads {Pte.Describe(store.Get(i))}, used {store.Used} (expected {used}), dense {store.IsDense}");
            if (step % 500 == 0)
            {
                for (int j = 0; j < PteStore.Entries; j++)
                    Assert.True(store.Get(j) == reference[j], $"step {step}: pte[{j}] reads {Pte.Describe(store.Get(j))}, expected {Pte.Describe(reference[j])}");
            }
        }
        output.WriteLine($"20,000 random set/clear steps: {conversions} conversions to the dense array, {backToSparse} back to sparse (page emptied)");
        Assert.True(conversions > 0 && backToSparse > 0, $"the sequence never crossed the threshold both ways ({conversions} up, {backToSparse} down)");
    }

    [Fact]
    public void PtePage_stays_sparse_up_to_SparseMax_entries_and_turns_dense_on_the_next()
    {
        var store = PteStore.Empty;
        for (int k = 0; k < PteStore.SparseMax; k++)
            store.Set(k * 37 % PteStore.Entries, Pte.Swap(k + 1)); // 37 is prime to 512: inserts land before, between and after
        output.WriteLine($"{store.Used} entries set: dense {store.IsDense}");
        Assert.False(store.IsDense);
        Assert.Equal(PteStore.SparseMax, store.Used);
        int free = Enumerable.Range(0, PteStore.Entries).First(j => store.Get(j) == Pte.None);
        store.Set(free, Pte.Swap(9999));
        output.WriteLine($"one more at {free}: dense {store.IsDense}, used {store.Used}");
        Assert.True(store.IsDense);
        Assert.Equal(PteStore.SparseMax + 1, store.Used);
        Assert.Equal(Pte.Swap(9999), store.Get(free));
        Assert.Equal(Pte.Swap(2), store.Get(37));
    }

    [Fact]
    public void PteStore_refuses_an_entry_that_would_overwrite_the_packed_index()
    {
        var store = PteStore.Empty;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => store.Set(3, Pte.Swap(1L << 47)));
        output.WriteLine(e.Message);
        Assert.Equal(0, store.Used);
    }

    [Fact]
    public void Sparse_touches_fault_map_and_zap_exactly_as_dense_ones_and_munmap_still_frees_the_page_table()
    {
        // One 2 MiB-aligned VMA, every 7th page touched (74 of 512: sparse), then every page (dense), then munmap.
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        long a = TestMachines.AreaA;
        PtePage? page = null;
        bool denseAfterSparse = true, denseAfterAll = false;
        int usedSparse = 0;
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, a, 512 * P, RW);
            for (int i = 0; i < 512; i += 7) await CpuAccess.Access(t, a + i * P, write: true);
            page = mm.PageTable.Lookup(a);
            denseAfterSparse = page!.IsDense;
            usedSparse = page.Used;
            for (int i = 0; i < 512; i++) await CpuAccess.Access(t, a + i * P, write: true);
            denseAfterAll = page.IsDense;
            await Munmap.DoMunmap(t, mm, a, a + 512 * P);
        });
        h.Run();
        h.CloseFrameAccounting();
        output.WriteLine($"after every 7th page: used {usedSparse}, dense {denseAfterSparse}; after all: dense {denseAfterAll}; faults {h.Machine.VmStat.Faults}; freed {page!.Freed}; anon frames {h.Machine.Frames.Anon}");
        Assert.Equal(74, usedSparse);
        Assert.False(denseAfterSparse);
        Assert.True(denseAfterAll);
        Assert.Equal(512, h.Machine.VmStat.Faults);
        Assert.True(page.Freed);
        Assert.Equal(0, page.Used);
        Assert.Equal(0, h.Machine.Frames.Anon);
        TestMachines.AssertClean(h);
    }
}
