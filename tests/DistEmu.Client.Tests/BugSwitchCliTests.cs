using System.Text.Json;

namespace DistEmu.Client.Tests;

/// <summary>
/// --bug on the orleans engine: every grain's kernel gets the switch, so a historical bug shows through grains as it
/// does under sim (§8.3: mmap_read_unlock after a VMA-lock fault drops a read hold the fault never took, S6), and the
/// faults that met it are the marked traces, though the reports were made in other grains than the traces'.
/// </summary>
public class BugSwitchCliTests : InProcessCliTests
{
    [Fact]
    public void A_bug_switched_in_on_the_orleans_engine_is_reported_through_the_grains()
    {
        var dir = Path.Combine(_tmp, "orleans");
        var trace = Path.Combine(_tmp, "trace.json");
        var (code, stdout, stderr) = Cli("run", "--engine", "orleans", "--bug", "mmap-unlock-after-vma-fault", "--workload", "page-fault1",
            "--param", "size_mb=4", "--ops", "200", "--trace-file", trace, "--trace-sample", "0.01", "--out", dir);
        Assert.True(code == 0, stderr);
        Assert.Contains("bugs switched in: mmap-unlock-after-vma-fault", stdout);
        using var stats = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "stats.json")));
        var violations = stats.RootElement.GetProperty("sanitizer").GetProperty("violations").EnumerateArray().ToList();
        Assert.NotEmpty(violations);
        Assert.All(violations, v => Assert.Equal("S6", v.GetProperty("invariant").GetString()));
        Assert.Contains("mmap_lock", violations[0].GetProperty("message").GetString());
        Assert.Contains("bugs: [mmap-unlock-after-vma-fault]", File.ReadAllText(Path.Combine(dir, "config.yaml")));

        // The reports were made in the VMA grains; the faults' traces, recorded by the CPU grains, are still the red
        // ones: the VMA grain hands the report back with its reply.
        using var jaeger = JsonDocument.Parse(File.ReadAllText(trace));
        var marked = jaeger.RootElement.GetProperty("data").EnumerateArray()
            .SelectMany(t => t.GetProperty("spans").EnumerateArray())
            .Where(sp => sp.GetProperty("tags").EnumerateArray().Any(tag => tag.GetProperty("key").GetString() == "error"))
            .ToList();
        Assert.NotEmpty(marked);
        Assert.All(marked, sp =>
        {
            Assert.Equal("page_fault", sp.GetProperty("operationName").GetString());
            var note = sp.GetProperty("tags").EnumerateArray().Single(tag => tag.GetProperty("key").GetString() == "emu.violation");
            Assert.StartsWith("S6: mmap_lock", note.GetProperty("value").GetString());
        });

        // The same run without it is clean.
        var (clean, cleanOut, cleanErr) = Cli("run", "--engine", "orleans", "--workload", "page-fault1", "--param", "size_mb=4", "--ops", "200",
            "--out", Path.Combine(_tmp, "clean"));
        Assert.True(clean == 0, cleanErr);
        Assert.Contains("sanitizer: no violations", cleanOut);
    }
}
