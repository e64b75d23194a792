namespace DistEmu.Client.Tests;

/// <summary>The progress text and its bounds: the live line and the plain lines say the same thing.</summary>
public sealed class ProgressDisplayTests
{
    [Fact]
    public void A_run_snapshot_says_tasks_faults_emulated_time_and_rates()
    {
        var s = ProgressSnapshot.OfRun(faults: 10_000, emulatedNs: 2_000_000_000, elapsed: TimeSpan.FromSeconds(4), tasksDone: 2, tasks: 8, fraction: 0.25);
        Assert.Equal("2/8 tasks done, 10,000 faults, 5,000 emulated faults/s, 2,000.0 emulated ms, 2,500 host faults/s", s.Text);
        Assert.Equal(0.25, s.Fraction);
    }

    [Fact]
    public void The_fraction_done_is_the_larger_of_the_ops_and_the_duration_bounds()
    {
        Assert.Null(ProgressSnapshot.FractionDone(null, null, TimeSpan.FromSeconds(5), null));
        Assert.Equal(0.5, ProgressSnapshot.FractionDone(500, 1000, TimeSpan.FromSeconds(1), null));
        Assert.Equal(0.75, ProgressSnapshot.FractionDone(500, 1000, TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(4)));
        Assert.Equal(1.0, ProgressSnapshot.FractionDone(5000, 1000, TimeSpan.Zero, null));
    }

    [Fact]
    public void The_eta_follows_the_rate_so_far()
    {
        Assert.Equal("ETA 30s", ProgressDisplay.Eta(0.5, TimeSpan.FromSeconds(30)));
        Assert.Equal("ETA 3m 00s", ProgressDisplay.Eta(0.25, TimeSpan.FromMinutes(1)));
        Assert.Null(ProgressDisplay.Eta(null, TimeSpan.FromMinutes(1)));
        Assert.Null(ProgressDisplay.Eta(1.0, TimeSpan.FromMinutes(1)));
    }

    [Fact]
    public void A_writer_that_is_not_the_terminal_gets_plain_lines()
    {
        Assert.IsType<PlainProgress>(ProgressDisplay.For(new StringWriter()));
        Assert.Equal(42, ProgressDisplay.For(TextWriter.Null).Show("t", show =>
        {
            show(new ProgressSnapshot("x", 0.1));
            return 42;
        }));
    }
}
