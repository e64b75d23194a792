namespace DistEmu.Client.Tests;

/// <summary>What System.CommandLine adds to distemu's command line: typo corrections, response files, completion, help.</summary>
public sealed class CommandLineTests : InProcessCliTests
{
    [Fact]
    public void A_mistyped_option_is_one_error_line_then_the_correction()
    {
        var (code, _, stderr) = Cli("run", "--prest", "small");
        Assert.Equal(2, code);
        var lines = Lines(stderr);
        Assert.Equal("distemu: error: run: unknown option '--prest' (see distemu run --help)", lines[0]);
        Assert.Equal("distemu: did you mean --preset?", lines[1]);
    }

    [Fact]
    public void A_mistyped_command_names_the_commands_and_suggests_the_nearest()
    {
        var (code, _, stderr) = Cli("explor");
        Assert.Equal(2, code);
        var lines = Lines(stderr);
        Assert.StartsWith("distemu: error: unknown command 'explor'; expected run, replay, presets, experiment, explore, cluster, db or silo", lines[0]);
        Assert.Contains("explore", lines[1]);
    }

    [Theory]
    [InlineData(new[] { "run", "--seed" }, "distemu: error: --seed: missing value")]
    [InlineData(new[] { "run", "--seed", "x" }, "distemu: error: --seed 'x': not an integer")]
    [InlineData(new[] { "run", "--param", "novalue" }, "distemu: error: --param 'novalue': expected k=v")]
    [InlineData(new[] { "run", "--duration", "soon" }, "distemu: error: --duration 'soon': expected a positive time such as 10s, 500ms or 2m")]
    [InlineData(new[] { "presets", "extra" }, "distemu: error: presets: unexpected argument 'extra'")]
    [InlineData(new[] { "replay" }, "distemu: error: replay: expected a trace file: distemu replay FILE [run options]")]
    public void Parse_errors_keep_their_wording(string[] args, string line)
    {
        var (code, _, stderr) = Cli(args);
        Assert.Equal(2, code);
        Assert.Equal(line, Assert.Single(Lines(stderr)));
    }

    [Fact]
    public void A_response_file_holds_options_and_a_later_option_overrides_it()
    {
        var rsp = Path.Combine(_tmp, "small-sim.rsp");
        File.WriteAllText(rsp, "--engine sim\n--preset small\n--workload page-fault1\n--param size_mb=1\n--ops 5000\n");
        var outDir = Path.Combine(_tmp, "out");
        var (code, stdout, stderr) = Cli("run", "@" + rsp, "--ops", "100", "--out", outDir);
        Assert.True(code == 0, stderr);
        Assert.Contains("(sim engine)", stdout);
        Assert.Contains("100 ops per task", stdout);
    }

    [Fact]
    public void The_suggest_directive_completes_option_values()
    {
        var (code, stdout, _) = Cli("[suggest:13]", "run --engine ");
        Assert.Equal(0, code);
        Assert.Equal(["orleans", "sim"], Lines(stdout).Select(l => l.Trim()).ToArray());
        (_, stdout, _) = Cli("[suggest:17]", "run --preset s");
        Assert.Contains("small", Lines(stdout).Select(l => l.Trim()));
    }

    [Theory]
    [InlineData("run")]
    [InlineData("replay")]
    [InlineData("presets")]
    [InlineData("experiment")]
    [InlineData("explore")]
    [InlineData("silo")]
    public void Every_command_has_generated_help_exit_0(string command)
    {
        var (code, stdout, stderr) = Cli(command, "--help");
        Assert.Equal(0, code);
        Assert.Empty(stderr);
        Assert.Contains($"distemu {command}", stdout);
        Assert.Contains("Options:", stdout);
    }

    [Fact]
    public void Bare_distemu_prints_the_commands_and_is_a_usage_error()
    {
        var (code, stdout, _) = Cli();
        Assert.Equal(2, code);
        foreach (var command in new[] { "run", "replay", "presets", "experiment", "explore", "cluster", "db", "silo" })
            Assert.Contains(command, stdout);
        Assert.Equal(0, Cli("help").Code);
        Assert.Equal(0, Cli("--help").Code);
    }

    [Fact]
    public void A_reproduce_command_quotes_what_a_shell_would_split()
    {
        var o = new ExploreOptions { MachineFile = "my machines/m.yaml", Params = new(StringComparer.Ordinal) { ["size_mb"] = "4" } };
        var command = ExploreCommand.ReproduceCommand(o, "merged", 8, 3);
        Assert.StartsWith("distemu run --engine sim --explore --machine 'my machines/m.yaml' --policy merged", command);
        Assert.Contains("--param size_mb=4", command);
    }
}
