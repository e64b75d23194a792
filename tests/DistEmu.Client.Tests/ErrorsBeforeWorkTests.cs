namespace DistEmu.Client.Tests;

/// <summary>
/// Bad input is found before anything launches (issue 15, item 4): whatever YamlDotNet throws on a machine file, and
/// an output path that cannot be written, end as one line "distemu: error: …" and exit 2, with no stack trace and
/// nothing run or written.
/// </summary>
public sealed class ErrorsBeforeWorkTests : InProcessCliTests
{
    private static void AssertOneLineNoTrace(string stderr, string startsWith)
    {
        Assert.DoesNotContain(stderr.Split('\n'), l => l.StartsWith("   at ", StringComparison.Ordinal));
        Assert.StartsWith(startsWith, Assert.Single(Lines(stderr)));
    }

    [Theory]
    [InlineData("nodes: [1, 2\ncpus: x\n")] // an unterminated flow sequence: YamlDotNet's scanner throws InvalidOperationException
    [InlineData("name: bad\nnodes: 2\ndistance: [[10, 20], [20, 10]\n")] // a YamlException
    [InlineData("a: {b: [\n")]
    public void Any_yaml_failure_is_file_line_column_malformed_yaml_and_exit_2(string text)
    {
        var file = Path.Combine(_tmp, "m.yaml");
        File.WriteAllText(file, text);
        var (code, stdout, stderr) = Cli("run", "--engine", "sim", "--machine", file, "--ops", "10", "--out", Path.Combine(_tmp, "out"));
        Assert.Equal(2, code);
        AssertOneLineNoTrace(stderr, "distemu: error: ");
        Assert.Matches(@"^distemu: error: .*m\.yaml:\d+:\d+: malformed YAML: ", Lines(stderr)[0]);
        Assert.DoesNotContain("running", stdout);
        Assert.False(Directory.Exists(Path.Combine(_tmp, "out")));
    }

    [Theory]
    [InlineData("run", "--engine", "sim", "--ops", "10")]
    [InlineData("run", "--engine", "orleans", "--ops", "10")]
    [InlineData("explore", "--schedules", "1")]
    [InlineData("experiment", "--policies", "merged", "--ops", "10")]
    public void An_unwritable_out_folder_is_exit_2_before_anything_runs(params string[] args)
    {
        var (code, stdout, stderr) = Cli([.. args, "--out", "/proc/distemu-x"]);
        Assert.Equal(2, code);
        AssertOneLineNoTrace(stderr, "distemu: error: --out /proc/distemu-x: ");
        Assert.DoesNotContain("running", stdout);
        Assert.DoesNotContain("run 1/", stdout);
        Assert.DoesNotContain("exploring", stdout);
    }

    [Fact]
    public void A_file_in_the_way_of_the_out_folder_is_exit_2()
    {
        var file = Path.Combine(_tmp, "file");
        File.WriteAllText(file, "");
        var (code, _, stderr) = Cli("run", "--engine", "sim", "--ops", "10", "--out", Path.Combine(file, "sub", "out"));
        Assert.Equal(2, code);
        AssertOneLineNoTrace(stderr, "distemu: error: --out ");
        Assert.Contains("is a file", stderr);
    }

    [Fact]
    public void An_unwritable_trace_file_is_exit_2_before_the_run()
    {
        var outDir = Path.Combine(_tmp, "out");
        var (code, stdout, stderr) = Cli("run", "--engine", "sim", "--ops", "10", "--trace-file", "/proc/distemu-t.json", "--out", outDir);
        Assert.Equal(2, code);
        AssertOneLineNoTrace(stderr, "distemu: error: --trace-file /proc/distemu-t.json: ");
        Assert.DoesNotContain("running", stdout);
        Assert.False(Directory.Exists(outDir));
    }
}
