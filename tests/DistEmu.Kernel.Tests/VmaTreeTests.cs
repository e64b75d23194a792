using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sim;
using Xunit.Abstractions;

namespace DistEmu.Kernel.Tests;

/// <summary>
/// The VMA tree (the maple tree's role): every version answers mas_walk and range queries exactly as a plain sorted
/// list of the same VMAs would, whatever the chunking, and a published version never changes (RCU readers).
/// </summary>
public class VmaTreeTests(ITestOutputHelper output)
{
    private const long P = TestMachines.Page;

    [Fact]
    public void Tree_versions_answer_find_and_overlap_like_a_sorted_list_through_mmaps_munmaps_and_splits()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var m = h.Machine;
        var mm = m.CreateMm();
        var rng = new Random(11);
        var tree = VmaTree.Empty;
        var model = new List<Vma>(); // sorted by start
        const int Slots = 4000;      // the address space: 4000 slots of 4 pages
        int adds = 0, removes = 0, splits = 0;
        var old = new List<(VmaTree Tree, Vma[] Vmas)>();
        for (int step = 0; step < 6000; step++)
        {
            int op = rng.Next(10);
            if (op < 7 || model.Count < 2)
            {
                long s = rng.Next(Slots) * 4 * P, e = s + rng.Next(1, 4) * P;
                if (model.Any(v => v.Start < e && v.End > s)) continue;
                var v = new Vma(m, m.NextVmaId(), mm, s, e, VmFlags.Read, null, 0);
                tree = tree.With([], [v]);
                model.Add(v);
                adds++;
            }
            else if (op < 9)
            {
                int n = rng.Next(1, 3);
                var gone = model.OrderBy(_ => rng.Next()).Take(n).ToList();
                tree = tree.With(gone, []);
                model.RemoveAll(gone.Contains);
                removes++;
            }
            else
            {
                // __split_vma: shrink one in place, publish the new half.
                var v = model[rng.Next(model.Count)];
                if (v.End - v.Start < 2 * P) continue;
                long at = v.Start + P;
                bool below = rng.Next(2) == 0;
                var nv = below
                    ? new Vma(m, m.NextVmaId(), mm, v.Start, at, VmFlags.Read, null, 0)
                    : new Vma(m, m.NextVmaId(), mm, at, v.End, VmFlags.Read, null, 0);
                if (below) v.Start = at;
                else v.End = at;
                tree = tree.With([], [nv]);
                model.Add(nv);
                splits++;
            }
            model.Sort((x, y) => x.Start.CompareTo(y.Start));
            if (step % 100 == 0)
                old.Add((tree, model.ToArray()));
            Check(step, tree, model, rng);
        }
        output.WriteLine($"6000 steps: {adds} mmaps, {removes} munmaps, {splits} splits; final tree {tree.Count} VMAs, version {tree.Version}");
        // RCU: an old version still lists what it listed when published (bounds may have moved in place since: splits).
        foreach (var (t, vmas) in old)
            Assert.Equal(vmas, t.Vmas);
        Assert.True(adds > 1000 && removes > 300 && tree.Count > 500 && splits > 100, $"too few operations of a kind: {adds} {removes} {splits}");
    }

    private static void Check(int step, VmaTree tree, List<Vma> model, Random rng)
    {
        Assert.True(tree.Count == model.Count, $"step {step}: tree has {tree.Count} VMAs, the list {model.Count}");
        Assert.True(tree.Vmas.SequenceEqual(model), $"step {step}: tree order differs from the sorted list");
        for (int k = 0; k < 20; k++)
        {
            long addr = rng.NextInt64(0, 4000 * 4 * P + P);
            var expected = model.FirstOrDefault(v => v.Contains(addr));
            var found = tree.Find(addr);
            Assert.True(ReferenceEquals(expected, found), $"step {step}: Find(0x{addr:x}) gave {found?.ToString() ?? "none"}, expected {expected?.ToString() ?? "none"}");
            long end = addr + rng.Next(1, 64) * P;
            var overlap = tree.Overlapping(addr, end);
            var want = model.Where(v => v.Start < end && v.End > addr).ToList();
            Assert.True(overlap.SequenceEqual(want), $"step {step}: Overlapping(0x{addr:x}, 0x{end:x}) gave {overlap.Count} VMAs, expected {want.Count}");
        }
    }

    [Fact]
    public void Tree_refuses_an_added_vma_that_overlaps_one_already_there()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var m = h.Machine;
        var mm = m.CreateMm();
        var a = new Vma(m, m.NextVmaId(), mm, 10 * P, 20 * P, VmFlags.Read, null, 0);
        var b = new Vma(m, m.NextVmaId(), mm, 15 * P, 25 * P, VmFlags.Read, null, 0);
        var tree = VmaTree.Empty.With([], [a]);
        var e = Assert.Throws<InvalidOperationException>(() => tree.With([], [b]));
        output.WriteLine(e.Message);
        Assert.Contains("overlapping VMAs", e.Message);
    }
}
