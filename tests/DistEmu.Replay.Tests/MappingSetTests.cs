// The replayer's view of the traced address space follows mmap(MAP_FIXED): a new mapping replaces whatever it
// overlaps, leaving the cut-off edges of older mappings (file offsets following the cut), and lookups see half-open
// ranges [Start, End). Checked rule by rule, then against a page-by-page model under random mappings.
using DistEmu.Replay;

namespace DistEmu.Replay.Tests;

public sealed class MappingSetTests
{
    private const ulong P = 4096;

    private static MappedRegion Anon(ulong startPage, ulong endPage, string name = "//anon") =>
        new(startPage * P, endPage * P, PerfProtection.Read | PerfProtection.Write, PerfMappingKind.Anon, name, 0);

    private static MappedRegion File(ulong startPage, ulong endPage, ulong offsetPages, string name = "/lib/x.so") =>
        new(startPage * P, endPage * P, PerfProtection.Read | PerfProtection.Exec, PerfMappingKind.File, name, offsetPages * P);

    private static string Show(MappingSet s) =>
        string.Join(" ", s.Regions.Select(r => $"[{r.Start / P},{r.End / P}):{r.Name}@{r.PageOffset / P}"));

    [Fact]
    public void Map_inside_a_file_mapping_splits_it_in_three_and_the_upper_edge_keeps_its_file_offset()
    {
        var s = new MappingSet();
        s.Map(File(10, 20, offsetPages: 100));
        s.Map(Anon(13, 15));
        Assert.Equal("[10,13):/lib/x.so@100 [13,15)://anon@0 [15,20):/lib/x.so@105", Show(s));
    }

    [Fact]
    public void Map_over_several_mappings_removes_those_inside_and_cuts_the_edges()
    {
        var s = new MappingSet();
        s.Map(Anon(0, 4, "a"));
        s.Map(Anon(4, 6, "b"));
        s.Map(Anon(6, 8, "c"));
        s.Map(Anon(10, 12, "d"));
        s.Map(Anon(2, 7, "new"));
        Assert.Equal("[0,2):a@0 [2,7):new@0 [7,8):c@0 [10,12):d@0", Show(s));
    }

    [Fact]
    public void An_empty_mapping_changes_nothing()
    {
        var s = new MappingSet();
        s.Map(Anon(0, 4));
        s.Map(Anon(2, 2, "empty"));
        Assert.Equal("[0,4)://anon@0", Show(s));
    }

    [Fact]
    public void Lookups_see_half_open_ranges()
    {
        var s = new MappingSet();
        s.Map(Anon(4, 8, "a"));
        s.Map(Anon(8, 9, "b"));
        Assert.False(s.TryFind(4 * P - 1, out _));
        Assert.True(s.TryFind(4 * P, out var r) && r.Name == "a");
        Assert.True(s.TryFind(8 * P - 1, out r) && r.Name == "a");
        Assert.True(s.TryFind(8 * P, out r) && r.Name == "b");
        Assert.False(s.TryFind(9 * P, out _));

        Assert.False(s.Overlaps(0, 4 * P), "a range ending where a mapping starts does not overlap it");
        Assert.False(s.Overlaps(9 * P, 12 * P), "a range starting where a mapping ends does not overlap it");
        Assert.True(s.Overlaps(3 * P, 4 * P + 1));
        Assert.False(s.Overlaps(5 * P, 5 * P), "an empty range overlaps nothing");

        Assert.True(s.TryFindFirstAtOrAbove(4 * P, out r) && r.Name == "a");
        Assert.True(s.TryFindFirstAtOrAbove(5 * P, out r) && r.Name == "b");
        Assert.False(s.TryFindFirstAtOrAbove(8 * P + 1, out _));
    }

    [Fact]
    public void Random_mappings_agree_with_a_page_by_page_model_of_MAP_FIXED()
    {
        var rng = new Random(15);
        var s = new MappingSet();
        var model = new Dictionary<ulong, (string Name, ulong Offset)>(); // page → owner and file offset of that page
        for (int i = 0; i < 400; i++)
        {
            ulong start = (ulong)rng.Next(0, 200), end = start + (ulong)rng.Next(0, 24);
            var region = rng.Next(2) == 0 ? Anon(start, end, $"a{i}") : File(start, end, (ulong)rng.Next(0, 1000), $"f{i}");
            s.Map(region);
            for (ulong p = start; p < end; p++)
                model[p] = (region.Name, region.Kind == PerfMappingKind.File ? region.PageOffset / P + (p - start) : 0);

            for (int k = 1; k < s.Count; k++)
                Assert.True(s.Regions[k - 1].End <= s.Regions[k].Start, $"after mapping {i}: regions overlap or are out of order: {Show(s)}");
        }
        for (ulong p = 0; p < 230; p++)
        {
            bool found = s.TryFind(p * P + 7, out var r);
            Assert.True(found == model.ContainsKey(p), $"page {p}: set says {(found ? r.Name : "unmapped")}, model {(model.TryGetValue(p, out var m0) ? m0.Name : "unmapped")}");
            if (!found) continue;
            var m = model[p];
            Assert.True(r.Name == m.Name, $"page {p}: owned by {r.Name}, the last mapping over it was {m.Name}");
            if (r.Kind == PerfMappingKind.File)
                Assert.True(r.PageOffset / P + (p - r.Start / P) == m.Offset, $"page {p} of {r.Name}: file page {r.PageOffset / P + (p - r.Start / P)}, expected {m.Offset}");
        }
    }
}
