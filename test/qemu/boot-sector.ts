// The smallest guest that talks: a boot sector printing a line on one UART
// (COM1 0x3f8 = console, COM2 0x2f8 = telemetry UART) and halting. Real mode:
//   cli; xor ax,ax; mov ds,ax; mov si,msg; mov dx,PORT
//   l: lodsb; test al,al; jz h; out dx,al; jmp l
//   h: hlt; jmp h
import fs from "node:fs";

export function bootSector(message: string, ioPort: 0x3f8 | 0x2f8 = 0x3f8): Buffer {
  const code = [0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0xbe, 0x16, 0x7c, 0xba, ioPort & 0xff, ioPort >> 8, 0xac, 0x84, 0xc0, 0x74, 0x03, 0xee, 0xeb, 0xf8, 0xf4, 0xeb, 0xfd];
  // SeaBIOS wants a disk of a plausible size, not just one sector.
  const img = Buffer.alloc(1024 * 1024);
  Buffer.from(code).copy(img, 0);
  Buffer.from(`${message}\n\0`).copy(img, code.length);
  img[510] = 0x55;
  img[511] = 0xaa;
  return img;
}

export function writeBootSector(file: string, message: string, ioPort: 0x3f8 | 0x2f8 = 0x3f8): string {
  fs.writeFileSync(file, bootSector(message, ioPort));
  return file;
}
