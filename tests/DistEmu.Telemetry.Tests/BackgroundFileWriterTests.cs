namespace DistEmu.Telemetry.Tests;

/// <summary>The trace files' writer thread: bytes arrive in order, and a failed write is not lost.</summary>
public class BackgroundFileWriterTests
{
    private sealed class FailingStream : MemoryStream
    {
        public override void Write(byte[] buffer, int offset, int count) => throw new IOException("disk full");
    }

    [Fact]
    public void Every_byte_arrives_in_order_across_many_chunks()
    {
        var target = new MemoryStream();
        using var w = new BackgroundFileWriter(target, chunkSize: 64, queued: 2);
        for (int i = 0; i < 10_000; i++)
        {
            var span = w.GetSpan(3);
            span[0] = (byte)(i >> 16);
            span[1] = (byte)(i >> 8);
            span[2] = (byte)i;
            w.Advance(3);
        }
        w.Complete();
        var bytes = target.ToArray();
        Assert.Equal(30_000, bytes.Length);
        for (int i = 0; i < 10_000; i++)
            Assert.Equal(i, (bytes[3 * i] << 16) | (bytes[3 * i + 1] << 8) | bytes[3 * i + 2]);
    }

    [Fact]
    public void A_failed_write_is_reported_when_the_file_is_completed()
    {
        using var w = new BackgroundFileWriter(new FailingStream(), chunkSize: 16);
        w.GetSpan(10)[..10].Fill((byte)'x');
        w.Advance(10);
        var e = Assert.Throws<IOException>(w.Complete);
        Console.WriteLine(e.Message);
        Assert.Contains("disk full", e.Message);
    }
}
