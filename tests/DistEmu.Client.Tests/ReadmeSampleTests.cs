using System.Text.RegularExpressions;

namespace DistEmu.Client.Tests;

/// <summary>
/// The README's sample run is real output: scripts/readme-sample.sh writes it from the README's first command on the
/// sim engine, and this test runs the same command and compares, so a change to the model or to the output that
/// leaves the README behind fails here. The masks are the script's: progress lines and the host-time rows go, the
/// results folder's path and timestamp are replaced.
/// </summary>
public sealed partial class ReadmeSampleTests : InProcessCliTests
{
    [Fact]
    public void Readme_sample_run_is_what_the_first_command_prints_on_the_sim_engine_now()
    {
        string outDir = Path.Combine(_tmp, "results", "20260101-000000-small-page-fault1");
        var (code, stdout, stderr) = Cli("run", "--preset", "small", "--workload", "page-fault1", "--engine", "sim", "--out", outDir);
        Assert.True(code == 0, $"the README's first command on the sim engine exited {code}:\n{stderr}");

        var printed = Mask(stdout.Replace("\r\n", "\n").TrimEnd('\n').Split('\n'), outDir);
        var shown = ReadmeBlock();
        int differs = Enumerable.Range(0, Math.Max(printed.Count, shown.Count))
            .FirstOrDefault(i => i >= printed.Count || i >= shown.Count || printed[i] != shown[i], -1);
        if (differs < 0) return;
        Assert.Fail(
            $"README.md's sample run differs from what the command prints now, first at block line {differs + 1}:\n" +
            $"  README:  {(differs < shown.Count ? shown[differs] : "(block ends)")}\n" +
            $"  printed: {(differs < printed.Count ? printed[differs] : "(output ends)")}\n" +
            "run scripts/readme-sample.sh to rewrite the block. The command printed:\n" + stdout);
    }

    [Fact]
    public void Readme_keeps_the_newcomers_commands_first_and_links_its_docs()
    {
        var lines = File.ReadAllLines(Path.Combine(DeployFilesTests.Root(), "README.md"));
        Assert.Equal("```", lines[2]);
        Assert.Equal("dotnet run --project src/Client -c Release -- run --preset small --workload page-fault1", lines[3]);
        Assert.Equal("./scripts/test.sh", lines[4]);
        Assert.StartsWith("./scripts/install.sh", lines[5]);
        string text = string.Join('\n', lines);
        foreach (var doc in new[] { "docs/DESIGN.md", "docs/PROTOCOL.md", "docs/POLICIES.md" })
        {
            Assert.Contains($"]({doc})", text);
            Assert.True(File.Exists(Path.Combine(DeployFilesTests.Root(), doc)), $"README links {doc}, which does not exist");
        }
    }

    /// <summary>The lines of the fenced block under "## Sample run".</summary>
    private static List<string> ReadmeBlock()
    {
        var lines = File.ReadAllLines(Path.Combine(DeployFilesTests.Root(), "README.md"));
        int heading = Array.FindIndex(lines, l => l.StartsWith("## Sample run", StringComparison.Ordinal));
        Assert.True(heading >= 0, "README.md has no '## Sample run' section");
        int open = Array.FindIndex(lines, heading, l => l.StartsWith("```", StringComparison.Ordinal));
        int close = Array.FindIndex(lines, open + 1, l => l.StartsWith("```", StringComparison.Ordinal));
        return lines[(open + 1)..close].ToList();
    }

    /// <summary>scripts/readme-sample.sh's masks, applied to what the command printed.</summary>
    private static List<string> Mask(IEnumerable<string> printed, string outDir) =>
        printed.Where(l => !l.StartsWith("progress: ", StringComparison.Ordinal) && !HostRow().IsMatch(l))
               .Select(l => l == "results: " + outDir ? "results: …/results/YYYYMMDD-HHMMSS-small-page-fault1" : l)
               .ToList();

    [GeneratedRegex(@"^(host time \(s\)|faults / host s) ")]
    private static partial Regex HostRow();
}
